package pipe

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ExecTarget runs a command per batch (the exec kind): the event on stdin,
// exit status 0 for success.
type ExecTarget struct {
	// Command is the program and its arguments, run without a shell. A
	// program without a '/' is looked up on Sluice's $PATH (not on a PATH
	// set in Env); a relative path is taken from Dir (or from Sluice's
	// working directory).
	Command []string `json:"command"`
	// TimeoutSeconds bounds one run (default 30, max 840); the whole
	// process group is killed when it passes.
	TimeoutSeconds float64 `json:"timeoutSeconds,omitempty"`
	// Env is added to the command's environment, over Sluice's own. The
	// SLUICE_ names are the batch's (SLUICE_TOPIC, SLUICE_RECORDS, …), so
	// none may be set here.
	Env map[string]string `json:"env,omitempty"`
	// Dir is the command's working directory, an absolute path; "" is
	// Sluice's own.
	Dir string `json:"dir,omitempty"`
}

// MaxExecCommandArgs bounds target.exec.command: the program and its
// arguments.
const MaxExecCommandArgs = 64

// ExecEnvReservedPrefix starts the variables Sluice sets for each batch.
const ExecEnvReservedPrefix = "SLUICE_"

// envNameRE is a portable environment variable name (POSIX's portable
// character set for names, which shells can read as $NAME).
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validateExec checks an exec target section.
func validateExec(v *ValidationError, t *ExecTarget) {
	const f = "target.exec."
	switch {
	case len(t.Command) == 0 || t.Command[0] == "":
		v.Add(f+"command", "", "required: give the program to run and its arguments, e.g. [\"./handle.sh\", \"--verbose\"]")
	case len(t.Command) > MaxExecCommandArgs:
		v.Add(f+"command", strconv.Itoa(len(t.Command))+" elements", fmt.Sprintf("give the program and at most %d arguments", MaxExecCommandArgs-1))
	}
	for i, arg := range t.Command {
		// execve takes C strings: a NUL would cut the argument short, so
		// the command could never start.
		if strings.ContainsRune(arg, 0) {
			v.Add(fmt.Sprintf("%scommand[%d]", f, i), strconv.Quote(arg), "remove the NUL byte: no program argument can hold one")
		}
	}
	// NaN compares false both ways, so the range is tested for what is
	// allowed rather than for what is not.
	if s := t.TimeoutSeconds; !(s >= 0 && s <= maxTargetTimeoutSecondsFloat) {
		v.Add(f+"timeoutSeconds", strconv.FormatFloat(s, 'f', -1, 64), fmt.Sprintf("use 0 (the default, %s) up to %d seconds", DefaultTargetTimeout, int(maxTargetTimeoutSecondsFloat)))
	}
	for _, name := range slices.Sorted(maps.Keys(t.Env)) {
		field := f + "env." + name
		switch {
		case !envNameRE.MatchString(name):
			v.Add(field, strconv.Quote(name), "use a variable name of letters, digits and '_' that does not start with a digit")
		case strings.HasPrefix(name, ExecEnvReservedPrefix):
			v.Add(field, strconv.Quote(name), "Sluice sets the "+ExecEnvReservedPrefix+" variables itself for each batch: use another name")
		}
		if strings.ContainsRune(t.Env[name], 0) {
			// Not quoted back: a value may be a credential.
			v.Add(field, "", "remove the NUL byte: no environment value can hold one")
		}
	}
	switch d := t.Dir; {
	case d == "":
	case strings.ContainsRune(d, 0):
		v.Add(f+"dir", strconv.Quote(d), "remove the NUL byte: no path can hold one")
	case !filepath.IsAbs(d):
		v.Add(f+"dir", strconv.Quote(d), "use an absolute path, e.g. /srv/handlers, or leave it out for Sluice's working directory")
	}
}
