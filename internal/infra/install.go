package infra

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/cluster-api/util"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	capiproviderv1 "github.com/hcp-dev/hcp/api/capiprovider/v1beta1"
)

// MachineUserData finds what a bound Agent installs from: the bootstrap data
// (an Ignition pointer config) of the Machine its AgentMachine belongs to.
func MachineUserData(c client.Client) func(ctx context.Context, a *agentv1.Agent) ([]byte, error) {
	return func(ctx context.Context, a *agentv1.Agent) ([]byte, error) {
		name, ns := a.Labels[capiproviderv1.AgentMachineRefLabel], a.Labels[capiproviderv1.AgentMachineRefNamespaceLabel]
		if name == "" || ns == "" {
			return nil, errors.New("the Agent is bound but reserved for no AgentMachine")
		}
		am := &capiproviderv1.AgentMachine{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, am); err != nil {
			return nil, fmt.Errorf("AgentMachine %s/%s: %w", ns, name, err)
		}
		m, err := util.GetOwnerMachine(ctx, c, am.ObjectMeta)
		if err != nil || m == nil {
			return nil, fmt.Errorf("machine of AgentMachine %s/%s: not found yet (%v)", ns, name, err)
		}
		return userData(ctx, c, m)
	}
}

func userData(ctx context.Context, c client.Client, m *clusterv1.Machine) ([]byte, error) {
	if m.Spec.Bootstrap.DataSecretName == nil {
		return nil, fmt.Errorf("machine %s/%s has no bootstrap data yet", m.Namespace, m.Name)
	}
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: *m.Spec.Bootstrap.DataSecretName}, s); err != nil {
		return nil, fmt.Errorf("bootstrap data of machine %s/%s: %w", m.Namespace, m.Name, err)
	}
	if len(s.Data["value"]) == 0 {
		return nil, fmt.Errorf("bootstrap data Secret %s/%s has no value", s.Namespace, s.Name)
	}
	return s.Data["value"], nil
}
