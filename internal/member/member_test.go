package member

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClaimDirIsStableAndUniquePerProcess(t *testing.T) {
	dir := t.TempDir()
	a, err := ClaimDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(a.Name); err != nil {
		t.Fatalf("claimed name %q is invalid: %v", a.Name, err)
	}
	// A second holder of the same data directory (a separate open file
	// description, as another process has) gets a name of its own.
	b, err := ClaimDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name == a.Name || b.Name != a.Name+"-1" {
		t.Fatalf("second claim = %q, want %q", b.Name, a.Name+"-1")
	}
	// A restart (the first holder gone) gets the first name back.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := ClaimDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != a.Name {
		t.Fatalf("claim after release = %q, want %q again", c.Name, a.Name)
	}
	b.Close()
	c.Close()
	d, err := ClaimDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Name != a.Name {
		t.Fatalf("claim after all released = %q, want %q", d.Name, a.Name)
	}
}

// TestClaimDirSurvivesAKilledHolder checks the point of the lock: a
// process killed without cleanup (SIGKILL) leaves its slot free for its
// restart.
func TestClaimDirSurvivesAKilledHolder(t *testing.T) {
	if dir := os.Getenv("MEMBER_TEST_HOLD"); dir != "" {
		// The helper process: claim, say so, and wait to be killed.
		c, err := ClaimDir(dir)
		if err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString(c.Name + "\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestClaimDirSurvivesAKilledHolder$")
	cmd.Env = append(os.Environ(), "MEMBER_TEST_HOLD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper process: %v", err)
	}
	name := strings.TrimSpace(line)
	held, err := ClaimDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if held.Name != name+"-1" {
		t.Fatalf("claim while another process holds %q = %q, want %q", name, held.Name, name+"-1")
	}
	held.Close()
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	again, err := ClaimDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Name != name {
		t.Fatalf("claim after the holder was killed = %q, want its %q", again.Name, name)
	}
}

func TestBaseIDIsKeptAndChecked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "member.id")
	if err := os.WriteFile(path, []byte("worker-7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ClaimDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if c.Name != "worker-7" {
		t.Fatalf("name = %q, want the stored worker-7", c.Name)
	}
	if err := os.WriteFile(path, []byte("bad name/with slash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ClaimDir(dir)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "fix or delete") {
		t.Fatalf("a malformed member.id = %v, want an error naming the file and the fix", err)
	}
}

func TestValidate(t *testing.T) {
	for _, ok := range []string{"a", "worker-0", "pod.sluice-1_x", strings.Repeat("x", MaxNameLen)} {
		if err := Validate(ok); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a/b", "é", strings.Repeat("x", MaxNameLen+1)} {
		if err := Validate(bad); err == nil {
			t.Errorf("Validate(%q) = nil, want an error", bad)
		}
	}
	if id := InstanceID("w", "0e5c"); id != "w-0e5c" {
		t.Errorf("InstanceID = %q", id)
	}
}
