// Command konnectivity-server is the konnectivity (apiserver-network-proxy) server of the hcp release payload: the control plane end of the reverse tunnel.
package main

import (
	"flag"
	"os"

	"k8s.io/klog/v2"

	"sigs.k8s.io/apiserver-network-proxy/cmd/server/app"
	"sigs.k8s.io/apiserver-network-proxy/cmd/server/app/options"
	"sigs.k8s.io/apiserver-network-proxy/pkg/util"
)

func main() {
	o := options.NewProxyRunOptions()
	command := app.NewProxyCommand(&app.Proxy{}, o)
	flags := command.Flags()
	flags.AddFlagSet(o.Flags())
	klogFlags := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	klog.InitFlags(klogFlags)
	klogFlags.VisitAll(func(fl *flag.Flag) {
		fl.Name = util.Normalize(fl.Name)
		flags.AddGoFlag(fl)
	})
	if err := command.Execute(); err != nil {
		klog.ErrorS(err, "konnectivity-server failed")
		klog.Flush()
		os.Exit(1)
	}
}
