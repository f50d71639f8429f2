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

// buildVCS is the commit and its time that the go command stamps into a
// binary built from a git checkout, and whether the tree had changes.
func buildVCS() (commit, at string, modified bool) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", "", false
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return commit, at, modified
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Sluice's version, commit and build date",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			commit, at, modified := buildVCS()
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, map[string]any{"version": version(), "go": runtime.Version(),
					"commit": commit, "commitTime": at, "modified": modified})
			}
			line := "sluice " + version()
			if commit != "" {
				line += ", commit " + commit[:min(len(commit), 12)]
				if modified {
					line += " with local changes"
				}
				if at != "" {
					line += " of " + at
				}
			}
			_, err := fmt.Fprintf(a.env.Stdout, "%s (%s)\n", line, runtime.Version())
			return err
		},
	}
}
