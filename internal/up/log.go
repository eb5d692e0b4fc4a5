package up

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// openLog opens hcp up's log file, <dataDir>/logs/hcp-up.log, for appending.
func openLog(dataDir string) (*os.File, error) {
	dir := filepath.Join(dataDir, "logs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	return os.OpenFile(filepath.Join(dir, "hcp-up.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
}

// severityTee writes every log entry to the file, and warnings and errors
// (klog's W and E lines) to the terminal as well, each distinct error at most
// once a minute: a controller retrying the same failure does not flood it.
type severityTee struct {
	file, terminal io.Writer

	mu    sync.Mutex
	shown map[string]time.Time
}

func (t *severityTee) Write(p []byte) (int, error) {
	if len(p) > 0 && (p[0] == 'E' || p[0] == 'W') {
		key := string(p)
		if _, rest, ok := strings.Cut(key, "] "); ok {
			key = rest
		}
		if _, e, ok := strings.Cut(key, " err="); ok {
			key, _, _ = strings.Cut(e, "\" ")
		}
		t.mu.Lock()
		if t.shown == nil {
			t.shown = map[string]time.Time{}
		}
		if last, seen := t.shown[key]; !seen || time.Since(last) > time.Minute {
			t.shown[key] = time.Now()
			_, _ = t.terminal.Write(p)
		}
		t.mu.Unlock()
	}
	return t.file.Write(p)
}
