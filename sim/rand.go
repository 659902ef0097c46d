package sim

import (
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync/atomic"
)

// Randomness streams. Each part of the world draws from its own stream, so
// that, for example, a change to the workload does not move every network
// delay. All come from the run's one seed.
const (
	streamNetwork = "network"
	streamClients = "clients"
	streamFaults  = "faults"
	streamRaft    = "raft"
	streamClock   = "clock"
	streamDisk    = "disk"
	// streamWatchers draws what watchers watch, the members they watch on
	// and when they act; a scenario without watchers draws nothing from it.
	streamWatchers = "watchers"
	// streamLeases and streamLocks draw what lease holders and lock users
	// do and when; a scenario without them draws nothing from them.
	streamLeases = "leases"
	streamLocks  = "locks"
)

// newStream returns the named stream for seed.
func newStream(seed uint64, name string) *rand.ChaCha8 {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	return rand.NewChaCha8(sha256.Sum256(append(b[:], name...)))
}

// running guards the process-wide crypto/rand override below.
var running atomic.Bool

// withRaftRandomness points crypto/rand.Reader at r while fn runs.
//
// raft draws its randomized election timeouts from crypto/rand.Reader, a
// package variable; pointing it at the run's seeded raft stream is what
// makes elections reproducible. It is process-wide, so one process runs one
// simulation at a time: a second, overlapping run panics rather than
// silently losing determinism. (Parallel seeds use worker processes.)
func withRaftRandomness(r io.Reader, fn func()) {
	if !running.CompareAndSwap(false, true) {
		panic("sim: a simulation is already running in this process; runs share crypto/rand.Reader and must not overlap")
	}
	saved := crand.Reader
	crand.Reader = r
	defer func() {
		crand.Reader = saved
		running.Store(false)
	}()
	fn()
}
