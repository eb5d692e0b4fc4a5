// Package sim runs a management cluster for tests and benchmarks: a real
// control plane from the release payload (etcd, kube-apiserver,
// kube-controller-manager from the embedded management plane, plus
// kube-scheduler) whose nodes are simulated by kwok's controller running in
// this process, so that pods scheduled to them become Running and Ready as a
// kubelet would make them.
package sim

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/clock"
	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodelease "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	"sigs.k8s.io/kwok/pkg/apis/internalversion"
	kwokv1 "sigs.k8s.io/kwok/pkg/apis/v1alpha1"
	kwokclient "sigs.k8s.io/kwok/pkg/client/clientset/versioned"
	"sigs.k8s.io/kwok/pkg/kwok/controllers"
	kwoklog "sigs.k8s.io/kwok/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/hcp-dev/hcp/internal/hub"
	"github.com/hcp-dev/hcp/internal/ports"
	"github.com/hcp-dev/hcp/internal/release"
)

// NodeAnnotation marks the nodes kwok simulates.
const NodeAnnotation = "kwok.x-k8s.io/node"

// Cluster is a running simulated management cluster.
type Cluster struct {
	Hub       *hub.Hub
	scheduler *exec.Cmd
	logFile   *os.File
	cancel    context.CancelFunc
}

// Start brings the cluster up in dir.
func Start(ctx context.Context, dir string, rel *release.Release, log logr.Logger) (_ *Cluster, err error) {
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	h, err := hub.Start(startCtx, hub.Options{DataDir: dir, Release: rel, Log: log})
	if err != nil {
		return nil, fmt.Errorf("starting the management control plane: %w", err)
	}
	c := &Cluster{Hub: h}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if err := h.WaitReady(startCtx); err != nil {
		return nil, fmt.Errorf("starting the management control plane: %w", err)
	}
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		return nil, err
	}
	if c.logFile, err = os.Create(filepath.Join(dir, "logs", "kube-scheduler.log")); err != nil {
		return nil, err
	}
	kc := h.KubeconfigPath()
	c.scheduler = exec.Command(rel.Binary(release.KubeScheduler), "--kubeconfig="+kc, "--authentication-kubeconfig="+kc,
		"--authorization-kubeconfig="+kc, "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port))
	c.scheduler.Stdout, c.scheduler.Stderr = c.logFile, c.logFile
	if err := c.scheduler.Start(); err != nil {
		return nil, err
	}
	kctx, kcancel := context.WithCancel(context.Background())
	c.cancel = kcancel
	if err := startKwok(kctx, h.RESTConfig()); err != nil {
		return nil, fmt.Errorf("starting kwok: %w", err)
	}
	return c, nil
}

// Stop ends everything Start started.
func (c *Cluster) Stop() {
	if c.cancel != nil {
		c.cancel()
	}
	if c.scheduler != nil && c.scheduler.Process != nil {
		_ = c.scheduler.Process.Kill()
		_, _ = c.scheduler.Process.Wait()
	}
	if c.logFile != nil {
		_ = c.logFile.Close()
	}
	c.Hub.Stop()
}

// startKwok runs kwok's node and pod controllers for every node annotated
// kwok.x-k8s.io/node=fake, with kwok's fast stages: nodes become Ready and
// renew their Leases; pods become Running and Ready and go away when deleted.
func startKwok(ctx context.Context, cfg *rest.Config) error {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 200, 400
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	kwokTyped, err := kwokclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	groups, err := restmapper.GetAPIGroupResources(typed.Discovery())
	if err != nil {
		return err
	}
	stages := map[internalversion.StageResourceRef][]*internalversion.Stage{}
	for _, raw := range []string{nodefast.DefaultNodeInit, nodelease.DefaultNodeHeartbeatWithLease,
		podfast.DefaultPodReady, podfast.DefaultPodComplete, podfast.DefaultPodDelete} {
		var v1 kwokv1.Stage
		if err := yaml.UnmarshalStrict([]byte(raw), &v1); err != nil {
			return err
		}
		s, err := internalversion.ConvertToInternalStage(&v1)
		if err != nil {
			return err
		}
		stages[s.Spec.ResourceRef] = append(stages[s.Spec.ResourceRef], s)
	}
	ctr, err := controllers.NewController(controllers.Config{
		Clock:                             clock.RealClock{},
		DynamicClient:                     dyn,
		RESTClient:                        typed.Discovery().RESTClient(),
		RESTMapper:                        restmapper.NewDiscoveryRESTMapper(groups),
		TypedClient:                       typed,
		TypedKwokClient:                   kwokTyped,
		ManageNodesWithAnnotationSelector: NodeAnnotation + "=fake",
		CIDR:                              "10.0.0.1/16",
		NodeIP:                            "10.255.0.1",
		LocalStages:                       stages,
		PodPlayStageParallelism:           4,
		NodePlayStageParallelism:          4,
		NodeLeaseDurationSeconds:          40,
		NodeLeaseParallelism:              4,
		PodsOnNodeSyncParallelism:         1,
		ID:                                "hcp-sim",
	})
	if err != nil {
		return err
	}
	// kwok's own log (leases renewed, benign races with deletions) is noise here.
	return ctr.Start(kwoklog.NewContext(ctx, kwoklog.NewLogger(io.Discard, kwoklog.LevelError)))
}
