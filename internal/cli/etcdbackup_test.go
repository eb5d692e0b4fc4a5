package cli

import (
	"strings"
	"testing"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
)

func TestBackupStorage(t *testing.T) {
	for _, tc := range []struct {
		to, endpoint, creds string
		want                string // type/path-or-bucket/prefix, or the flag an error names
	}{
		{to: "", want: "Local//"},
		{to: "/var/backups/hcp/", want: "Local//var/backups/hcp"},
		{to: "s3://bucket/a/b/", endpoint: "http://127.0.0.1:8333", creds: "c", want: "S3/bucket/a/b"},
		{to: "s3://bucket", endpoint: "https://s3.example.com/", creds: "c", want: "S3/bucket/"},
		{to: "/srv/../srv/b", want: "Local//srv/b"},
		{to: "backups", want: "--to"},
		{to: "s3://", endpoint: "http://x", creds: "c", want: "--to"},
		{to: "s3://Bad_Bucket", endpoint: "http://x", creds: "c", want: "--to"},
		{to: "s3://bucket", creds: "c", want: "--s3-endpoint"},
		{to: "s3://bucket", endpoint: "ftp://x", creds: "c", want: "--s3-endpoint"},
		{to: "s3://bucket", endpoint: "http://x/path", creds: "c", want: "--s3-endpoint"},
		{to: "s3://bucket", endpoint: "http://x", want: "--s3-credentials"},
	} {
		st, err := backupStorage(tc.to, tc.endpoint, "", tc.creds)
		got := ""
		switch {
		case err != nil:
			got = err.Error()
		case st.Type == hyperv1.S3BackupStorage:
			got = "S3/" + st.S3.Bucket + "/" + st.S3.Prefix
		case st.Local != nil:
			got = "Local/" + st.Local.Path
		default:
			got = "Local//"
		}
		if (err == nil && got != tc.want) || (err != nil && !strings.Contains(got, tc.want)) {
			t.Errorf("--to %q --s3-endpoint %q --s3-credentials %q: got %q, want %q", tc.to, tc.endpoint, tc.creds, got, tc.want)
		}
	}
}
