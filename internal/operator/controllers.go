package operator

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controller/hostedcluster"
	"github.com/hcp-dev/hcp/internal/controller/hostedcontrolplane"
	"github.com/hcp-dev/hcp/internal/release"
	"github.com/hcp-dev/hcp/internal/runtime/local"
)

// addControllers registers every controller and the control-plane runtime.
func addControllers(mgr manager.Manager, opts Options) error {
	if opts.DataDir == "" {
		return fmt.Errorf("the operator needs a data directory for control planes")
	}
	releases := release.Store{Dir: opts.ReleaseDir}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	changes := make(chan string, 256)
	rt, err := local.New(local.Options{
		BalancerCommand: []string{exe, "balance"},
		Dir:             filepath.Join(opts.DataDir, "controlplanes"),
		Client:          mgr.GetAPIReader(),
		Log:             opts.Log.WithName("runtime"),
		StopOnClose:     opts.StopControlPlanesOnExit,
		Notify: func(ns string) {
			select {
			case changes <- ns:
			default:
			}
		},
	})
	if err != nil {
		return err
	}
	// The runtime is closed when the manager stops, after the controllers.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		rt.Close()
		return nil
	})); err != nil {
		return err
	}
	if err := addInfra(mgr, opts); err != nil {
		return err
	}
	ignitionEndpoint := ""
	if u, err := url.Parse(opts.Infra.URL); err == nil && opts.Infra.Addr != "" {
		ignitionEndpoint = u.Host
	}
	if err := (&hostedcluster.Reconciler{
		IgnitionEndpoint:    ignitionEndpoint,
		Client:              mgr.GetClient(),
		Releases:            releases,
		SupportedPublishing: map[hyperv1.PublishingStrategyType]bool{hyperv1.NodePort: true},
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&hostedcontrolplane.Reconciler{
		Client:   mgr.GetClient(),
		Runtime:  rt,
		Releases: releases,
		Changes:  changes,
	}).SetupWithManager(mgr)
}
