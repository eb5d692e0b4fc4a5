package hostedcluster

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func TestDueAt(t *testing.T) {
	last := time.Date(2026, 12, 3, 1, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		schedule string
		failed   bool
		want     string
	}{
		{DefaultBackupSchedule, false, "04:00"},
		{DefaultBackupSchedule, true, "01:35"},
		{"@every 1m", true, "01:31"},
		{"*/2 * * * *", false, "01:32"},
	} {
		s, err := cron.ParseStandard(tc.schedule)
		if err != nil {
			t.Fatal(err)
		}
		if got := dueAt(s, last, tc.failed).Format("15:04"); got != tc.want {
			t.Errorf("%q failed=%v: due %s, want %s", tc.schedule, tc.failed, got, tc.want)
		}
	}
	if _, err := cron.ParseStandard("every hour"); err == nil {
		t.Error("a schedule that is not cron parsed")
	}
}
