package redrive

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/internal/destination"
)

// File reads a file destination's JSON lines from the cursor kept beside
// it (PATH.redrive: the byte offset redriven so far) to the end the file
// had when the redrive began.
type File struct {
	path  string
	f     *os.File
	r     *bufio.Reader
	pos   int64 // the offset of the next line to read
	end   int64
	saved int64
}

// CursorPath is where a file destination's redrive progress is kept.
func CursorPath(path string) string { return path + ".redrive" }

// NewFile opens path for a redrive. A destination that has never received a
// record has no file yet: that is an empty redrive, not an error.
func NewFile(path string) (*File, error) {
	d := &File{path: path}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	d.f, d.end = f, st.Size()
	if b, err := os.ReadFile(CursorPath(path)); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n >= 0 && n <= d.end {
			d.pos = n
		}
	}
	d.saved = d.pos
	if _, err := f.Seek(d.pos, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	d.r = bufio.NewReaderSize(f, 1<<20)
	return d, nil
}

// Where is the destination's URI.
func (d *File) Where() string { return "file://" + d.path }

// Next reads up to max entries of whole lines.
func (d *File) Next(_ context.Context, max int) ([]destination.Entry, func(context.Context) error, error) {
	var out []destination.Entry
	for d.f != nil && d.pos < d.end && len(out) < max {
		line, err := d.r.ReadBytes('\n')
		if len(line) == 0 || line[len(line)-1] != '\n' {
			break // a line still being written: the next redrive takes it
		}
		if err != nil {
			return nil, nil, err
		}
		es, err := destination.DecodeLine(line)
		if err != nil {
			return nil, nil, fmt.Errorf("%s at byte %d: %w", d.Where(), d.pos, err)
		}
		d.pos += int64(len(line))
		out = append(out, es...)
	}
	pos := d.pos
	commit := func(context.Context) error {
		if pos == d.saved {
			return nil
		}
		tmp := CursorPath(d.path) + ".tmp"
		if err := os.WriteFile(tmp, []byte(strconv.FormatInt(pos, 10)+"\n"), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, CursorPath(d.path)); err != nil {
			return err
		}
		d.saved = pos
		return syncDir(filepath.Dir(d.path))
	}
	return out, commit, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Close closes the file.
func (d *File) Close() error {
	if d.f == nil {
		return nil
	}
	return d.f.Close()
}
