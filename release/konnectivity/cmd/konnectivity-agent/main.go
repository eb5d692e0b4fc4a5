// Command konnectivity-agent is the konnectivity (apiserver-network-proxy) agent of the hcp release payload: it dials out from a node to the konnectivity server.
package main

import (
	"flag"
	"os"

	"k8s.io/klog/v2"

	"sigs.k8s.io/apiserver-network-proxy/cmd/agent/app"
	"sigs.k8s.io/apiserver-network-proxy/cmd/agent/app/options"
	"sigs.k8s.io/apiserver-network-proxy/pkg/util"
)

func main() {
	o := options.NewGrpcProxyAgentOptions()
	command := app.NewAgentCommand(&app.Agent{}, o)
	flags := command.Flags()
	flags.AddFlagSet(o.Flags())
	klogFlags := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	klog.InitFlags(klogFlags)
	klogFlags.VisitAll(func(fl *flag.Flag) {
		fl.Name = util.Normalize(fl.Name)
		flags.AddGoFlag(fl)
	})
	if err := command.Execute(); err != nil {
		klog.ErrorS(err, "konnectivity-agent failed")
		klog.Flush()
		os.Exit(1)
	}
}
