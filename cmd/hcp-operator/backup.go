package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hcp-dev/hcp/internal/backup"
)

// terminationLog is where a container's termination message goes.
const terminationLog = "/dev/termination-log"

// backupTool runs etcd-backup (a backup Job) or etcd-restore (an etcd
// member's init container) and returns the exit code. Its outcome is the
// container's termination message: the Result as JSON, or the error.
func backupTool(mode string, args []string) int {
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	etcdutl := fs.String("etcdutl", backup.JobEtcdutl, "etcdutl program")
	workDir := fs.String("work-dir", backup.JobWorkDir, "directory for the snapshot meanwhile")
	url := fs.String("url", "", "etcd-restore: the archive, an http(s) URL")
	infraID := fs.String("infra-id", "", "etcd-restore: the infrastructure ID the archive must be of")
	_ = fs.Parse(args)
	ctx := ctrl.SetupSignalHandler()
	var out []byte
	var err error
	switch mode {
	case "etcd-backup":
		var res *backup.Result
		if res, err = backup.RunJob(ctx, backup.JobInputDir, backup.JobEtcdClientDir, *etcdutl, *workDir); err == nil {
			out, err = json.Marshal(res)
		}
	case "etcd-restore":
		var msg string
		if msg, err = backup.RunRestore(ctx, *url, *infraID, *etcdutl, *workDir, fs.Args()); err == nil {
			out = []byte(msg)
		}
	}
	if err != nil {
		out = []byte("Error: " + err.Error())
	}
	fmt.Fprintln(os.Stderr, string(out))
	_ = os.WriteFile(terminationLog, out, 0o644)
	if err != nil {
		return 1
	}
	return 0
}
