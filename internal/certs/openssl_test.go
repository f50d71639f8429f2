package certs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestOpenSSLLive makes a fresh key with the openssl on PATH, encrypts it
// with PBES1 and PBES2 schemes, and checks we decrypt what it wrote. The
// committed fixtures pin one OpenSSL's output; this catches drift in
// whichever OpenSSL users actually run.
func TestOpenSSLLive(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH")
	}
	dir := t.TempDir()
	run := func(args ...string) error {
		cmd := exec.Command(openssl, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Logf("openssl %v: %v: %s", args, err, stderr.Bytes())
			return err
		}
		return nil
	}
	plainFile := filepath.Join(dir, "key.pem")
	if run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", plainFile) != nil {
		t.Fatal("openssl genpkey failed")
	}
	plainPEM, err := os.ReadFile(plainFile)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ParsePrivateKey(plainPEM, nil)
	if err != nil {
		t.Fatal(err)
	}

	// A password with shell and JSON metacharacters and non-ASCII text.
	password := `live "pass" \ wörd $HOME ✓`
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}

	legacy := []string{"-provider", "legacy", "-provider", "default"}
	cases := []struct {
		name   string
		args   []string
		legacy bool // needs OpenSSL 3's legacy provider, which may be absent
	}{
		{"PBES1 PBE-SHA1-3DES", []string{"-v1", "PBE-SHA1-3DES"}, false},
		{"PBES1 PBE-MD5-DES", append([]string{"-v1", "PBE-MD5-DES"}, legacy...), true},
		{"PBES2 aes-256-cbc", []string{"-v2", "aes-256-cbc"}, false},
		{"PBES2 aes-128-cbc hmacWithSHA512", []string{"-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA512"}, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, "enc"+string(rune('a'+i))+".pem")
			args := append([]string{"pkcs8", "-topk8", "-in", plainFile, "-passout", "file:" + passFile, "-out", out}, c.args...)
			if err := run(args...); err != nil {
				if c.legacy {
					t.Skip("this openssl cannot write the scheme (legacy provider missing?)")
				}
				t.Fatal("openssl pkcs8 failed")
			}
			encPEM, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParsePrivateKey(encPEM, []byte(password))
			if err != nil {
				t.Fatal(err)
			}
			if !sameKey(got, want) {
				t.Fatal("decrypted key differs from openssl's plain key")
			}
		})
	}
}
