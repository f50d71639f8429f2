package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// groupSessionTimeout goes down to 1 s, for clusters whose
// group.min.session.timeout.ms allows it (and the reliability suite, which
// kills `sluice serve` and needs the partitions back quickly).
func TestServeGroupSessionTimeoutRange(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
		err   string
	}{
		{"1s", time.Second, ""},
		{"45s", 45 * time.Second, ""},
		{"30m", 30 * time.Minute, ""},
		{"999ms", 0, "groupSessionTimeout: 999ms: use 1s–30m"},
		{"31m", 0, "groupSessionTimeout: 31m0s: use 1s–30m"},
		{"soon", 0, `groupSessionTimeout: "soon": use a duration`},
	} {
		path := filepath.Join(t.TempDir(), "sluice.yaml")
		if err := os.WriteFile(path, []byte("groupSessionTimeout: "+tc.value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadServeConfig(path)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.value, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.value, err, tc.err)
		case tc.err == "" && cfg.sessionTimeout != tc.want:
			t.Errorf("%s: session %s, want %s", tc.value, cfg.sessionTimeout, tc.want)
		}
	}
}
