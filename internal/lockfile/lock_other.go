//go:build !unix

package lockfile

import "os"

// TryLock cannot lock on this platform and always succeeds: processes
// sharing a data directory must be kept apart by hand (and given member
// names of their own).
func TryLock(*os.File) (bool, error) { return true, nil }
