package sim

import (
	"github.com/plumbdb/plumb/node"
)

// Apps are the simulated applications beyond the workload's clients that
// call the members' client API: lease holders (lease.go), lock users
// (lock.go), and the members' own forwarding of lease requests to the
// leader (forward.go). Each kind is written in a file of its own and runs
// through the app interface: its requests travel as the clients' do
// (evRequest, then evReply) under request IDs of its own (see
// appCallerBase), its timers are evAppTimer events, and the world asks it
// whether it has an operation in flight before it calls the run settled.

// app is one simulated application.
type app interface {
	// reply hands the app the reply to its request number seq.
	reply(seq uint64, rep node.Reply)
	// timer runs the app's timer of the given kind (its own encoding).
	timer(kind uint64)
	// moved tells the app that member idx is now reached at url: the
	// operator ran member update after an IP change, or added the member
	// (idx is then the next one).
	moved(idx int, url string)
	// inFlight says what history operation it is waiting for, "" if none:
	// the run does not settle while one is.
	inFlight() string
	// finish ends the app after the run: what it still waits for is
	// recorded as of unknown outcome.
	finish()
}

// appCallerBase is where apps' caller numbers start in request IDs
// (replyID): below it are the workload's clients and the operator.
const appCallerBase = 1 << 20

// addApp plugs an app into the world; its number names it in request IDs
// and timers.
func (w *world) addApp(a app) int {
	w.apps = append(w.apps, a)
	return len(w.apps) - 1
}

// appRequest sends app a's request number seq to the member at addr,
// over a client link.
func (w *world) appRequest(a int, seq uint64, addr string, req node.Request) {
	req.ID = replyID(appCallerBase+a, seq)
	if req.Creds == (node.Credentials{}) {
		req.Creds = w.appCreds()
	}
	if w.auth != nil {
		w.appCalls[req.ID] = w.now
	}
	w.schedule(&event{at: w.now + w.net.clientDelay(), kind: evRequest, addr: addr, req: &req})
}

// later runs fn at the given time: a step of an app that is neither a
// request nor a timer (a lock user's watch reaching its member).
func (w *world) later(at int64, fn func()) {
	w.schedule(&event{at: at, kind: evLater, fn: fn})
}

// appTimer runs app a's timer kind at the given time.
func (w *world) appTimer(a int, at int64, kind uint64) {
	w.schedule(&event{at: at, kind: evAppTimer, index: a, op: kind})
}

// appOf returns the app a request ID belongs to, if it is an app's.
func (w *world) appOf(id uint64) (a int, seq uint64, ok bool) {
	caller, seq := splitReplyID(id)
	if caller < appCallerBase {
		return 0, 0, false
	}
	return caller - appCallerBase, seq, true
}

// appReply hands a reply that reached its caller to its app; it reports
// whether the reply was an app's.
func (w *world) appReply(rep node.Reply) bool {
	a, seq, ok := w.appOf(rep.ID)
	if ok {
		if call, sent := w.appCalls[rep.ID]; sent {
			delete(w.appCalls, rep.ID)
			if rep.Err != nil && call >= w.auth.enabled && w.auth.enabled > 0 {
				w.noteAppAuth(rep.Err, "an app's request")
			}
		}
		w.apps[a].reply(seq, rep)
	}
	return ok
}

// appsInFlight names an app operation the run waits for, "" if none.
func (w *world) appsInFlight() string {
	for _, a := range w.apps {
		if s := a.inFlight(); s != "" {
			return s
		}
	}
	return ""
}

// Timer kinds carry a payload (a request number, a lease generation) above
// their low byte.
func timerKind(kind uint8, payload uint64) uint64 { return payload<<8 | uint64(kind) }

func splitTimer(k uint64) (kind uint8, payload uint64) { return uint8(k), k >> 8 }

// finishApps ends every app after the run and puts the revokes the
// members applied into the history.
func (w *world) finishApps() {
	for _, a := range w.apps {
		a.finish()
	}
	w.recordRevokes()
}
