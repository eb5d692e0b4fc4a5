package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
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
	"sigs.k8s.io/yaml"

	"github.com/hcp-dev/hcp/internal/hub"
	"github.com/hcp-dev/hcp/internal/ports"
	"github.com/hcp-dev/hcp/internal/release"
)

// managementCluster is a real management control plane from the release
// payload (etcd, kube-apiserver, kube-controller-manager, kube-scheduler)
// whose nodes are simulated by kwok's controller running in this process: pods
// scheduled to them are marked Running and Ready, as a kubelet would.
type managementCluster struct {
	*upProcess
	hub *hub.Hub
}

func startManagementCluster(t *testing.T) *managementCluster {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h, err := hub.Start(ctx, hub.Options{DataDir: dir, Release: rel, Log: testr.NewWithOptions(t, testr.Options{Verbosity: 0})})
	if err != nil {
		t.Fatalf("starting the management control plane: %v", err)
	}
	t.Cleanup(h.Stop)
	m := &managementCluster{upProcess: &upProcess{t: t, dataDir: dir, kubeconfig: h.KubeconfigPath()}, hub: h}

	// The scheduler decides where every control plane pod goes.
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "logs", "kube-scheduler.log"))
	if err != nil {
		t.Fatal(err)
	}
	sched := exec.Command(rel.Binary(release.KubeScheduler), "--kubeconfig="+h.KubeconfigPath(),
		"--authentication-kubeconfig="+h.KubeconfigPath(), "--authorization-kubeconfig="+h.KubeconfigPath(),
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port))
	sched.Stdout, sched.Stderr = logFile, logFile
	if err := sched.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sched.Process.Kill()
		_, _ = sched.Process.Wait()
		logFile.Close()
	})

	kctx, kcancel := context.WithCancel(context.Background())
	t.Cleanup(kcancel)
	if err := startKwok(kctx, h.RESTConfig()); err != nil {
		t.Fatalf("starting kwok: %v", err)
	}
	return m
}

// startKwok runs kwok's node and pod controllers for every node with the
// annotation kwok.x-k8s.io/node=fake, with kwok's fast stages: nodes become
// Ready and renew their Leases, pods become Running and Ready and go away when
// deleted.
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
		ManageNodesWithAnnotationSelector: "kwok.x-k8s.io/node=fake",
		CIDR:                              "10.0.0.1/16",
		NodeIP:                            "10.255.0.1",
		LocalStages:                       stages,
		PodPlayStageParallelism:           4,
		NodePlayStageParallelism:          4,
		NodeLeaseDurationSeconds:          40,
		NodeLeaseParallelism:              4,
		PodsOnNodeSyncParallelism:         1,
		ID:                                "hcp-e2e",
	})
	if err != nil {
		return err
	}
	return ctr.Start(ctx)
}
