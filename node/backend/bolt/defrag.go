package bolt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bbolt "go.etcd.io/bbolt"
)

// defragTxMaxBytes bounds the bytes copied in one write transaction of the
// new file while defragmenting (etcd's defragLimit is 10000 keys).
const defragTxMaxBytes = 64 << 20

// Defrag rewrites the database into a new file without its free pages and
// replaces the old file with it, as etcd's backend defragmentation does:
// bbolt never gives freed pages back to the file system, so after a
// compaction the file stays as large as it ever was until it is
// defragmented. Every bucket, the reserved one included, is copied; Size
// does not change, DiskBytes goes down.
//
// No batch may be open, and the caller must hold no slice the Backend
// returned (as after a Commit): the file is closed and reopened. Open
// Snapshots hold it up until they close (bbolt's Close waits for readers).
// A failure before the old file is closed leaves it as it was; one after
// (the rename or the reopen) makes every later Commit fail, as a failed
// commit does, and the member must restart.
func (be *Backend) Defrag() error {
	be.mustBeOpen()
	if be.open != nil {
		panic("bolt: " + be.path + ": Defrag while a batch is open")
	}
	if be.failed != nil {
		return be.failed
	}
	be.closeReadTx()
	tmp := be.path + ".defrag"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("bolt: defrag %s: %w", be.path, err)
	}
	dst, err := bbolt.Open(tmp, 0o600, &bbolt.Options{Timeout: lockTimeout, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("bolt: defrag %s: %w", be.path, err)
	}
	if err := bbolt.Compact(dst, be.db, defragTxMaxBytes); err != nil {
		return errors.Join(fmt.Errorf("bolt: defrag %s: %w", be.path, err), dst.Close(), os.Remove(tmp))
	}
	if err := dst.Close(); err != nil {
		return errors.Join(fmt.Errorf("bolt: defrag %s: %w", be.path, err), os.Remove(tmp))
	}
	if err := be.db.Close(); err != nil {
		be.failed = fmt.Errorf("bolt: defrag %s: close the old file: %w", be.path, err)
		return be.failed
	}
	renamed := os.Rename(tmp, be.path)
	if renamed == nil {
		renamed = syncDir(filepath.Dir(be.path))
	}
	// Reopen whichever file is in place: the new one, or the old one if
	// the rename failed.
	db, err := bbolt.Open(be.path, 0o600, be.bopts)
	if err != nil {
		be.failed = fmt.Errorf("bolt: defrag %s: reopen: %w", be.path, err)
		return be.failed
	}
	be.db = db
	if renamed != nil {
		return fmt.Errorf("bolt: defrag %s: replace the file: %w", be.path, renamed)
	}
	return nil
}
