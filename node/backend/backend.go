package backend

// Reader reads keys of named buckets.
//
// A bucket that was never written reads as empty. Slices returned by a Reader
// belong to it: the caller must not modify them, and must copy them if it
// keeps them past the next write to the Backend (other implementations may
// reuse the memory once a batch commits).
type Reader interface {
	// Get returns the value stored under key in bucket, and whether there is
	// one.
	Get(bucket, key []byte) (value []byte, ok bool)
	// ForEach calls fn for every key of bucket in ascending byte order of
	// keys, and stops at the first error fn returns, which ForEach returns.
	// fn must not write to the Backend or Batch being iterated.
	ForEach(bucket []byte, fn func(key, value []byte) error) error
}

// Batch is one atomic write. Nothing it writes is visible in the Backend until
// Commit, and Commit is all-or-nothing and durable on return. A Batch's own
// reads see its own writes on top of the committed state.
//
// After Commit or Rollback the Batch is finished: Rollback of a finished batch
// does nothing (so `defer b.Rollback()` is safe), and any other call panics.
type Batch interface {
	Reader
	// Put stores value under key in bucket, creating the bucket if needed.
	// The Batch copies key and value: the caller may reuse its buffers.
	Put(bucket, key, value []byte)
	// Delete removes key from bucket; deleting a missing key does nothing.
	Delete(bucket, key []byte)
	// Commit makes every write of the batch visible and durable at once, or
	// none of them and returns an error.
	Commit() error
	// Rollback discards the batch's writes.
	Rollback()
}

// Backend is a bucketed key-value store with atomic batched writes.
type Backend interface {
	// Reader reads the committed state: never the writes of an open batch.
	Reader
	// Begin opens a Batch. At most one batch is open at a time: Begin panics
	// if the previous one was neither committed nor rolled back.
	Begin() Batch
	// Size is the number of bytes held, keys plus values, for Status DbSize.
	Size() int64
	// Close releases the Backend. An open batch is rolled back.
	Close() error
}
