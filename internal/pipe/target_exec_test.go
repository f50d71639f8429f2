package pipe

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func validExec() Spec {
	s := valid()
	s.Target = Target{Exec: &ExecTarget{Command: []string{"./handle.sh", "--verbose"}}}
	return s
}

func TestValidateExecAccepts(t *testing.T) {
	cases := map[string]func(*ExecTarget){
		"minimal":       func(*ExecTarget) {},
		"bare name":     func(e *ExecTarget) { e.Command = []string{"jq"} },
		"max args":      func(e *ExecTarget) { e.Command = make([]string, MaxExecCommandArgs); e.Command[0] = "x" },
		"empty arg":     func(e *ExecTarget) { e.Command = []string{"x", ""} },
		"max timeout":   func(e *ExecTarget) { e.TimeoutSeconds = 840 },
		"fraction":      func(e *ExecTarget) { e.TimeoutSeconds = 0.5 },
		"env":           func(e *ExecTarget) { e.Env = map[string]string{"_X": "", "Region_1": "eu", "sluice_lower": "x"} },
		"absolute dir":  func(e *ExecTarget) { e.Dir = "/srv/handlers" },
		"env with nl":   func(e *ExecTarget) { e.Env = map[string]string{"PEM": "a\nb"} },
		"unicode value": func(e *ExecTarget) { e.Env = map[string]string{"GREETING": "grüß"} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			s := validExec()
			mutate(s.Target.Exec)
			if err := s.Validate(time.Now()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestValidateExecNamesFieldAndFix(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*ExecTarget)
		field  string
		want   string
	}{
		{"no command", func(e *ExecTarget) { e.Command = nil }, "target.exec.command", "required"},
		{"empty program", func(e *ExecTarget) { e.Command = []string{"", "x"} }, "target.exec.command", "required"},
		{"too many args", func(e *ExecTarget) { e.Command = make([]string, MaxExecCommandArgs+1); e.Command[0] = "x" }, "target.exec.command", "at most 63 arguments"},
		{"nul in program", func(e *ExecTarget) { e.Command = []string{"a\x00b"} }, "target.exec.command[0]", "NUL"},
		{"nul in arg", func(e *ExecTarget) { e.Command = []string{"x", "ok", "a\x00"} }, "target.exec.command[2]", "NUL"},
		{"negative timeout", func(e *ExecTarget) { e.TimeoutSeconds = -1 }, "target.exec.timeoutSeconds", "840"},
		{"timeout too long", func(e *ExecTarget) { e.TimeoutSeconds = 841 }, "target.exec.timeoutSeconds", "0 (the default, 30s) up to 840 seconds"},
		{"NaN timeout", func(e *ExecTarget) { e.TimeoutSeconds = math.NaN() }, "target.exec.timeoutSeconds", "840"},
		{"env digit first", func(e *ExecTarget) { e.Env = map[string]string{"1X": "v"} }, "target.exec.env.1X", "letters, digits and '_'"},
		{"env dash", func(e *ExecTarget) { e.Env = map[string]string{"MY-VAR": "v"} }, "target.exec.env.MY-VAR", "letters, digits and '_'"},
		{"env empty name", func(e *ExecTarget) { e.Env = map[string]string{"": "v"} }, "target.exec.env.", "letters"},
		{"env equals", func(e *ExecTarget) { e.Env = map[string]string{"A=B": "v"} }, "target.exec.env.A=B", "letters"},
		{"env reserved", func(e *ExecTarget) { e.Env = map[string]string{"SLUICE_TOPIC": "x"} }, "target.exec.env.SLUICE_TOPIC", "use another name"},
		{"env reserved prefix only", func(e *ExecTarget) { e.Env = map[string]string{"SLUICE_": "x"} }, "target.exec.env.SLUICE_", "SLUICE_"},
		{"env nul value", func(e *ExecTarget) { e.Env = map[string]string{"TOKEN": "se\x00cret"} }, "target.exec.env.TOKEN", "NUL"},
		{"relative dir", func(e *ExecTarget) { e.Dir = "handlers" }, "target.exec.dir", "absolute path"},
		{"dot dir", func(e *ExecTarget) { e.Dir = "./handlers" }, "target.exec.dir", "absolute path"},
		{"nul dir", func(e *ExecTarget) { e.Dir = "/srv/\x00" }, "target.exec.dir", "NUL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := validExec()
			c.mutate(s.Target.Exec)
			err := s.Validate(time.Now())
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a ValidationError", err)
			}
			if len(ve.Fields) != 1 || ve.Fields[0].Field != c.field {
				t.Fatalf("fields %+v, want exactly %s", ve.Fields, c.field)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%q does not mention %q", err, c.want)
			}
		})
	}
}

func TestValidateExecDoesNotEchoEnvValues(t *testing.T) {
	s := validExec()
	s.Target.Exec.Env = map[string]string{"TOKEN": "hunter2\x00"}
	err := s.Validate(time.Now())
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v: want a refusal that does not show the value", err)
	}
}

func TestValidateExecReportsEveryField(t *testing.T) {
	s := validExec()
	s.Target.Exec = &ExecTarget{TimeoutSeconds: 900, Env: map[string]string{"SLUICE_X": "", "B-1": ""}, Dir: "rel"}
	var ve *ValidationError
	if err := s.Validate(time.Now()); !errors.As(err, &ve) {
		t.Fatalf("got %v, want a ValidationError", err)
	}
	var got []string
	for _, f := range ve.Fields {
		got = append(got, f.Field)
	}
	want := "target.exec.command target.exec.timeoutSeconds target.exec.env.B-1 target.exec.env.SLUICE_X target.exec.dir"
	if strings.Join(got, " ") != want {
		t.Fatalf("fields %v, want %s (sorted env names, so errors are stable)", got, want)
	}
}

func TestExecTargetTimeoutAndNormalize(t *testing.T) {
	s := validExec()
	if got := s.TargetTimeout(); got != DefaultTargetTimeout {
		t.Fatalf("default timeout %s, want %s", got, DefaultTargetTimeout)
	}
	s.Target.Exec.TimeoutSeconds = 1.5
	if got := s.TargetTimeout(); got != 1500*time.Millisecond {
		t.Fatalf("timeout %s, want 1.5s", got)
	}
	s.Target.Exec.TimeoutSeconds = 0
	n := s.Normalize()
	if n.Target.Exec.TimeoutSeconds != DefaultTargetTimeout.Seconds() || s.Target.Exec.TimeoutSeconds != 0 {
		t.Fatalf("Normalize: %v (original %v), want the default filled in a copy", n.Target.Exec.TimeoutSeconds, s.Target.Exec.TimeoutSeconds)
	}
	if n.Target.Kind() != KindExec {
		t.Fatalf("kind %q, want %q", n.Target.Kind(), KindExec)
	}
}
