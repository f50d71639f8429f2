package cluster

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDomainHasNoClientDependencies keeps the domain packages free of the
// Kafka client and the AWS SDK: they hold rules, not connections.
func TestDomainHasNoClientDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps",
		"github.com/sluice-dev/sluice/internal/cluster", "github.com/sluice-dev/sluice/internal/pipe",
		"github.com/sluice-dev/sluice/internal/authmode").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/twmb/franz-go") || strings.HasPrefix(dep, "github.com/aws/") {
			t.Errorf("the domain depends on %s", dep)
		}
	}
}
