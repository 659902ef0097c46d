package bolt

import (
	"fmt"
	"io"

	bbolt "go.etcd.io/bbolt"
)

// Snapshot is a consistent copy of the whole database file as of the last
// Commit before it was taken (every bucket, the reserved one included), read
// through its own read-only transaction: etcd's backend snapshot, which
// etcdctl snapshot save receives.
//
// Take it on the Backend's goroutine (Snapshot reads no state of the
// Backend but its database, yet must not race Close); it may then be
// written and closed from any one goroutine while the Backend goes on
// committing. As in etcd, while it is open a Commit that grows the file
// past its memory mapping waits for it to close (bbolt cannot remap under
// a reader), and so does Close: close it promptly.
type Snapshot struct {
	tx   *bbolt.Tx
	path string
}

// Snapshot opens a Snapshot of the committed database.
func (be *Backend) Snapshot() (*Snapshot, error) {
	be.mustBeOpen()
	tx, err := be.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("bolt: snapshot %s: %w", be.path, err)
	}
	return &Snapshot{tx: tx, path: be.path}, nil
}

// Size is the number of bytes WriteTo writes: the database file in use.
func (s *Snapshot) Size() int64 { return s.tx.Size() }

// WriteTo writes the database file, a valid bbolt file of Size bytes, to w.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := s.tx.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("bolt: snapshot %s: %w", s.path, err)
	}
	return n, nil
}

// Close releases the snapshot's read transaction. Closing twice does
// nothing.
func (s *Snapshot) Close() error {
	if s.tx == nil {
		return nil
	}
	err := s.tx.Rollback()
	s.tx = nil
	if err != nil {
		return fmt.Errorf("bolt: snapshot %s: %w", s.path, err)
	}
	return nil
}
