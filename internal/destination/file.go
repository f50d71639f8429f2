package destination

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/sluice-dev/sluice/internal/stage"
)

// File appends one failure record per Failure to a file, as a JSON line.
// It is safe for concurrent use.
type File struct {
	path string
	b    *builder

	mu     sync.Mutex // orders whole lines and guards f
	f      *os.File
	closed bool
}

var _ stage.Destination = (*File)(nil)

// NewFile opens path for appending, creating it (0600: the records are the
// pipe's data) and its missing parent directories (0700). An existing file
// is appended to and keeps its permissions.
func NewFile(path string, meta Meta) (*File, error) {
	if path == "" {
		return nil, errors.New("failure destination file: no path")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failure destination file %s: cannot create its directory: %w", path, err)
	}
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failure destination file %s: %w", path, err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// A new file's name lives in its directory: without syncing that
		// too, a crash could lose the file with every record synced to it.
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, fmt.Errorf("failure destination file %s: %w", path, err)
		}
	}
	return &File{path: path, b: newBuilder(meta), f: f}, nil
}

// Send appends f's record and returns once it is synced to disk.
func (d *File) Send(ctx context.Context, f stage.Failure) error {
	if len(f.Records) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rec, err := d.b.batch(f)
	if err != nil {
		return err
	}
	line, err := marshal(rec)
	if err != nil {
		return err
	}
	line = append(line, '\n')

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("failure destination file %s is closed", d.path)
	}
	st, err := d.f.Stat()
	if err != nil {
		return fmt.Errorf("failure destination file %s: %w", d.path, err)
	}
	// One write per line, so that with O_APPEND another process appending
	// too cannot land inside it.
	if _, err := d.f.Write(line); err != nil {
		// A partial line (the disk filled up) would glue the next record
		// to it and spoil both: cut it off, so a retry writes a whole one.
		_ = d.f.Truncate(st.Size())
		return fmt.Errorf("failure destination file %s: cannot write: %w", d.path, err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("failure destination file %s: cannot sync: %w", d.path, err)
	}
	return nil
}

// Close closes the file; a Send after it fails.
func (d *File) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if err := d.f.Close(); err != nil {
		return fmt.Errorf("failure destination file %s: %w", d.path, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cannot sync directory %s: %w", dir, err)
	}
	return nil
}
