package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is the release, set when building:
//
//	go build -ldflags "-X github.com/sluice-dev/sluice/internal/cli.Version=v0.1.0" ./cmd/sluice
var Version = "dev"

// version is Version, or, when the build did not set it, the module version
// `go install …@vX` records, so installed binaries still say what they are.
func version() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Sluice's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, map[string]string{"version": version(), "go": runtime.Version()})
			}
			_, err := fmt.Fprintf(a.env.Stdout, "sluice %s (%s)\n", version(), runtime.Version())
			return err
		},
	}
}
