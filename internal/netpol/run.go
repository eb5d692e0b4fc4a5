package netpol

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/knftables"
)

// Problems says what this host lacks to enforce policies; empty when nothing.
func Problems() []string {
	if _, err := knftables.New(knftables.InetFamily, Table); err != nil {
		return []string{"nftables: " + err.Error()}
	}
	return nil
}

// Run keeps the node's table matching the cluster's pods, namespaces and
// NetworkPolicies until ctx ends. It must run in the node's network
// namespace. The rules stay when it ends: the pods they guard keep running.
func Run(ctx context.Context, cs kubernetes.Interface, node string, log logr.Logger) error {
	nft, err := knftables.New(knftables.InetFamily, Table)
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	f := informers.NewSharedInformerFactory(cs, 0)
	pods, namespaces, policies := f.Core().V1().Pods(), f.Core().V1().Namespaces(), f.Networking().V1().NetworkPolicies()
	changed := make(chan struct{}, 1)
	notify := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { signal(changed) },
		UpdateFunc: func(any, any) { signal(changed) },
		DeleteFunc: func(any) { signal(changed) },
	}
	for _, inf := range []cache.SharedIndexInformer{pods.Informer(), namespaces.Informer(), policies.Informer()} {
		if _, err := inf.AddEventHandler(notify); err != nil {
			return err
		}
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("network policies: the %v cache did not sync: %w", typ, ctx.Err())
		}
	}
	log.Info("enforcing NetworkPolicies", "node", node, "table", "inet "+Table)
	applied := ""
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-retry.C:
		}
		// Let a burst of changes (a Deployment's pods) settle into one write.
		time.Sleep(50 * time.Millisecond)
		state, err := snapshot(pods.Lister().List, namespaces.Lister().List, policies.Lister().List)
		if err != nil {
			log.Error(err, "reading the cluster's policies")
			retry.Reset(time.Second)
			continue
		}
		tx := nft.NewTransaction()
		Ruleset(tx, Compute(node, state))
		if text := tx.String(); text != applied {
			if err := nft.Run(ctx, tx); err != nil {
				log.Error(err, "writing the node's policy rules; retrying")
				retry.Reset(time.Second)
				continue
			}
			applied = text
		}
	}
}

// Remove deletes the node's table (the node is gone).
func Remove(ctx context.Context) error {
	nft, err := knftables.New(knftables.InetFamily, Table)
	if err != nil {
		return err
	}
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	return nft.Run(ctx, tx)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func snapshot(listPods func(labels.Selector) ([]*corev1.Pod, error), listNamespaces func(labels.Selector) ([]*corev1.Namespace, error),
	listPolicies func(labels.Selector) ([]*networkingv1.NetworkPolicy, error)) (State, error) {
	var s State
	var err error
	if s.Pods, err = listPods(labels.Everything()); err != nil {
		return s, err
	}
	if s.Namespaces, err = listNamespaces(labels.Everything()); err != nil {
		return s, err
	}
	s.Policies, err = listPolicies(labels.Everything())
	return s, err
}
