package linearizability

import (
	"errors"
	"fmt"
)

// Watch streams. A history holds, beside its operations, what each of its
// watchers was given: etcd's robustness tests record both too, and check
// the watch responses against the revisions the operations show. A watcher
// is one application watching one key or range with its options; it opens
// one watch after another (a Session each) as its connections break,
// asking each time from where it was, and records every response in the
// order it received them.

// Watcher is one watching client: what it watched, and every watch it
// opened, in order.
type Watcher struct {
	// ID names the watcher in reports ("w3"); unique in a history, from 1.
	ID int `json:"id"`
	// Key and End are the span watched, as an Operation's: End "" is Key
	// alone, EndAll every key from Key on, else [Key, End).
	Key string `json:"key"`
	End string `json:"end,omitempty"`
	// PrevKV, NoPut and NoDelete are etcd's watch options: each event
	// carries the key's previous version; puts, or deletes, are filtered
	// out.
	PrevKV   bool `json:"prev_kv,omitempty"`
	NoPut    bool `json:"no_put,omitempty"`
	NoDelete bool `json:"no_delete,omitempty"`
	// Sessions are the watches it opened, in order.
	Sessions []WatchSession `json:"sessions"`
}

// WatchSession is one watch a watcher opened, from its request to its end.
type WatchSession struct {
	// Member names who served it, for reports.
	Member string `json:"member"`
	// Open is when the watcher asked for it, Close when it ended (0 if it
	// was still open when the recording stopped).
	Open  int64 `json:"open"`
	Close int64 `json:"close,omitempty"`
	// StartRevision is the revision asked for; 0 asks for the member's
	// next revision, which Created tells.
	StartRevision int64 `json:"start_revision,omitempty"`
	// Created is the header revision of the answer that created the watch
	// (the member's revision then), 0 if it was never created.
	Created int64 `json:"created,omitempty"`
	// Responses are the responses received, in order.
	Responses []WatchResponse `json:"responses,omitempty"`
	// End says why the watch ended ("" if it had not).
	End string `json:"end,omitempty"`
}

// Start is the first revision the session may be given: StartRevision, or
// for a watch from now the revision after Created. 0 when neither is known
// (a watch from now that was never created).
func (s *WatchSession) Start() int64 {
	if s.StartRevision != 0 {
		return s.StartRevision
	}
	if s.Created != 0 {
		return s.Created + 1
	}
	return 0
}

// WatchResponse is one response of a watch, as the watcher received it.
type WatchResponse struct {
	// At is when the watcher received it.
	At int64 `json:"at"`
	// Revision is the response header's revision.
	Revision int64 `json:"revision"`
	// Events are the events it carried, in the order received.
	Events []WatchEvent `json:"events,omitempty"`
	// Canceled: the watch was canceled by the server; CompactRevision is
	// set when that was because its next revision was compacted.
	Canceled        bool  `json:"canceled,omitempty"`
	CompactRevision int64 `json:"compact_revision,omitempty"`
}

// IsProgress reports whether r is a progress notification: no events and
// not a cancellation. It says the watcher has been given every event up to
// r.Revision.
func (r *WatchResponse) IsProgress() bool { return len(r.Events) == 0 && !r.Canceled }

// WatchEvent is one event, etcd's mvccpb.Event: a put with the key's new
// version, or a delete (whose Kv holds the key and ModRevision only).
type WatchEvent struct {
	Type           Kind   `json:"type"` // KindPut or KindDelete
	Key            string `json:"key"`
	Value          string `json:"value,omitempty"`
	ModRevision    int64  `json:"mod_revision"`
	CreateRevision int64  `json:"create_revision,omitempty"`
	Version        int64  `json:"version,omitempty"`
	// PrevKV is the key's version before the event, when asked for and
	// given.
	PrevKV *KV `json:"prev_kv,omitempty"`
}

// Compaction is a compaction the cluster was asked for: a watcher whose
// next revision it removed may be canceled, and an event's prev_kv below
// it may be omitted. Whether it took effect does not matter to the check.
type Compaction struct {
	Revision int64 `json:"revision"`
	Call     int64 `json:"call"` // when it was asked for
}

// WatchEventsMax bounds the events of all the watchers of one History, as
// OperationsMax bounds its operations: Validate and ReadJSON reject more.
const WatchEventsMax = 1 << 22

// compactionsMax bounds the compactions of one History.
const compactionsMax = 1 << 20

// validateWatchers checks the watchers' format: what each field may hold
// on its own. Whether the streams agree with the operations is
// CheckWatches' question, not a format error.
func (h History) validateWatchers() error {
	if len(h.Compactions) > compactionsMax {
		return fmt.Errorf("history has %d compactions, more than the limit of %d", len(h.Compactions), compactionsMax)
	}
	for i, c := range h.Compactions {
		if c.Revision < 1 {
			return fmt.Errorf("compaction %d: revision: %d is not positive", i, c.Revision)
		}
	}
	ids := make(map[int]int)
	events := 0
	for i := range h.Watchers {
		w := &h.Watchers[i]
		if first, ok := ids[w.ID]; ok {
			return fmt.Errorf("watcher %d: id: %d is also watcher %d's", i, w.ID, first)
		}
		ids[w.ID] = i
		n, err := w.validate()
		if err != nil {
			return fmt.Errorf("watcher %d (w%d): %w", i, w.ID, err)
		}
		if events += n; events > WatchEventsMax {
			return fmt.Errorf("watchers have more than %d events, the limit", WatchEventsMax)
		}
	}
	return nil
}

// validate checks one watcher and returns how many events it holds.
func (w *Watcher) validate() (events int, err error) {
	switch {
	case w.ID < 1:
		return 0, fmt.Errorf("id: %d is not positive", w.ID)
	case w.Key == "":
		return 0, errors.New("key: empty")
	case w.End != "" && w.End != EndAll && w.End <= w.Key:
		return 0, fmt.Errorf("end: %q is not after key %q", w.End, w.Key)
	case w.NoPut && w.NoDelete:
		return 0, errors.New("no_put and no_delete: both set, it would watch nothing")
	}
	for i := range w.Sessions {
		s := &w.Sessions[i]
		n, err := s.validate()
		if err != nil {
			return 0, fmt.Errorf("session %d: %w", i, err)
		}
		events += n
	}
	return events, nil
}

func (s *WatchSession) validate() (events int, err error) {
	switch {
	case s.StartRevision < 0 || s.Created < 0:
		return 0, fmt.Errorf("start_revision %d, created %d: negative", s.StartRevision, s.Created)
	case s.Close != 0 && s.Close < s.Open:
		return 0, fmt.Errorf("close: %d is before open %d", s.Close, s.Open)
	case len(s.Responses) > 0 && s.Created == 0:
		// One stream's answers come in order: the creation first.
		return 0, errors.New("responses: received on a watch that was never created")
	}
	for i := range s.Responses {
		r := &s.Responses[i]
		if err := r.validate(); err != nil {
			return 0, fmt.Errorf("response %d: %w", i, err)
		}
		if i > 0 && r.At < s.Responses[i-1].At {
			return 0, fmt.Errorf("response %d: at: %d is before the previous response's %d", i, r.At, s.Responses[i-1].At)
		}
		if r.Canceled && i != len(s.Responses)-1 {
			return 0, fmt.Errorf("response %d: canceled, but responses follow it", i)
		}
		events += len(r.Events)
	}
	return events, nil
}

func (r *WatchResponse) validate() error {
	switch {
	case r.Revision < 0 || r.CompactRevision < 0:
		return fmt.Errorf("revision %d, compact_revision %d: negative", r.Revision, r.CompactRevision)
	case r.CompactRevision != 0 && !r.Canceled:
		return errors.New("compact_revision: set on a response that is not canceled")
	case r.Canceled && len(r.Events) > 0:
		return errors.New("events: set on a canceled response")
	}
	for i := range r.Events {
		if err := r.Events[i].validate(); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
	}
	return nil
}

func (e *WatchEvent) validate() error {
	switch {
	case e.Type != KindPut && e.Type != KindDelete:
		return fmt.Errorf("type: %q is not put or delete", e.Type)
	case e.Key == "":
		return errors.New("key: empty")
	case e.ModRevision < 1:
		return fmt.Errorf("mod_revision: %d is not positive", e.ModRevision)
	case e.CreateRevision < 0 || e.Version < 0:
		return errors.New("create_revision or version: negative")
	case e.PrevKV != nil && e.PrevKV.Key != e.Key:
		return fmt.Errorf("prev_kv: key %q is not the event's %q", e.PrevKV.Key, e.Key)
	}
	if err := validateRevisions(e.ModRevision, e.CreateRevision, e.Version, 0); err != nil {
		return err
	}
	if p := e.PrevKV; p != nil {
		if p.ModRevision < 0 || p.CreateRevision < 0 || p.Version < 0 {
			return errors.New("prev_kv: a negative revision or version")
		}
		if err := validateRevisions(p.ModRevision, p.CreateRevision, p.Version, 0); err != nil {
			return fmt.Errorf("prev_kv: %w", err)
		}
	}
	return nil
}

// String describes an event for reports.
func (e *WatchEvent) String() string {
	if e.Type == KindDelete {
		return fmt.Sprintf("delete %s @%d", describeKey(e.Key), e.ModRevision)
	}
	return fmt.Sprintf("put %s=%s @%d (create %d version %d)", describeKey(e.Key), e.Value, e.ModRevision, e.CreateRevision, e.Version)
}
