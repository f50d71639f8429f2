// Package member gives each Sluice process a stable name of its own, from
// which every pipe's consumer group instance id (Kafka's static membership,
// KIP-345) is derived, so a restarted process takes its predecessor's place
// in each group instead of joining as a stranger.
//
// The name comes from the user (a config setting or an environment
// variable) or, by default, from the data directory: Claim keeps a base id
// in DIR/member.id, created once, and takes the first of the slots
// DIR/member.lock, DIR/member-1.lock, … that no running process holds (an
// advisory lock the kernel drops when the process dies, SIGKILL included).
// A process restarted on the same data directory finds its slot free again
// and gets the same name; two processes sharing a data directory get two
// names. The lock is per machine: processes on different machines that
// share a data directory over a network file system must be given names.
package member

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/internal/lockfile"
)

// MaxNameLen bounds a member name so that an instance id (name, "-", a
// 36-character pipe UUID) stays far below Kafka's 249-character limit.
const MaxNameLen = 128

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// Validate checks a user-given member name; the error says what is allowed.
func Validate(name string) error {
	switch {
	case name == "":
		return errors.New("is empty: use letters, digits, '.', '_' and '-'")
	case len(name) > MaxNameLen:
		return fmt.Errorf("%q is %d characters long: use at most %d", name, len(name), MaxNameLen)
	case !nameRE.MatchString(name):
		return fmt.Errorf("%q: use only letters, digits, '.', '_' and '-' (Kafka's rule for group instance ids)", name)
	}
	return nil
}

// InstanceID is the consumer group instance id of member for the pipe
// with the given UUID. The UUID, not the pipe's name, keeps two pipes that
// share a custom consumer group from claiming one id, and a pipe re-created
// under an old name from inheriting the old one's membership.
func InstanceID(member, pipeUUID string) string {
	return member + "-" + pipeUUID
}

// Claim is a name held by this process until Close.
type Claim struct {
	// Name is the member name.
	Name string
	// Path is the lock file held, for messages.
	Path string
	f    *os.File
}

// Close releases the name for the next process.
func (c *Claim) Close() error {
	if c == nil || c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}

// maxSlots bounds the slots tried: more processes than this on one data
// directory is a mistake worth an error.
const maxSlots = 64

// ClaimDir claims a member name kept in dir (created if missing). See the
// package doc.
func ClaimDir(dir string) (*Claim, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("member name: %w", err)
	}
	base, err := baseID(filepath.Join(dir, "member.id"))
	if err != nil {
		return nil, err
	}
	for slot := 0; slot < maxSlots; slot++ {
		name, lock := base, "member.lock"
		if slot > 0 {
			name, lock = base+"-"+strconv.Itoa(slot), "member-"+strconv.Itoa(slot)+".lock"
		}
		path := filepath.Join(dir, lock)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("member name: %w", err)
		}
		ok, err := lockfile.TryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("member name: lock %s: %w", path, err)
		}
		if ok {
			return &Claim{Name: name, Path: path, f: f}, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("member name: %d processes already hold a name in %s: give this one a name of its own", maxSlots, dir)
}

// baseID reads the data directory's base id, creating it on first use from
// the host name and random bytes: readable in `kafka-consumer-groups
// --describe --members`, unique across machines.
func baseID(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		id := strings.TrimSpace(string(b))
		if err := Validate(id); err != nil {
			return "", fmt.Errorf("member name in %s %w: fix or delete the file", path, err)
		}
		return id, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("member name: %w", err)
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("member name: %w", err)
	}
	host, _ := os.Hostname()
	host = sanitize(host)
	if len(host) > 48 {
		host = host[:48]
	}
	if host == "" {
		host = "sluice"
	}
	id := host + "-" + hex.EncodeToString(rnd[:])
	// Written whole or not at all, so two processes starting together on a
	// new data directory cannot read a half-written id; the second rename
	// wins and both then read the same file below.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".member.id-*")
	if err != nil {
		return "", fmt.Errorf("member name: %w", err)
	}
	_, werr := tmp.WriteString(id + "\n")
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("member name: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("member name: %w", err)
	}
	os.Remove(tmp.Name())
	// Another process may have created it first: its id wins.
	return baseID(path)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '-'
	}, s)
}
