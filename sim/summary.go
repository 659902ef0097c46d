package sim

// Summary is one run's outcome as a flat record: the JSON object that
// `plumb sim run --json` prints, and the wasm runner too, one a line. Both
// print this type, so the two builds print exactly the same fields under
// the same names.
//
// Result.Summary fills everything that is a pure function of the run.
// WallSeconds, Reproduce and Artifacts are the caller's: the simulator
// never reads the wall clock, and only the caller knows the command line
// that started it and the files it saved.
type Summary struct {
	Scenario           string  `json:"scenario"`
	Seed               uint64  `json:"seed"`
	Verdict            Verdict `json:"verdict"`
	Linearizable       bool    `json:"linearizable"`
	Ops                int     `json:"ops"`
	OpsOK              int     `json:"ops_ok"`
	OpsFailed          int     `json:"ops_failed"`
	OpsUnknown         int     `json:"ops_unknown"`
	Elections          int     `json:"elections"`
	Crashes            int     `json:"crashes"`
	Snapshots          int     `json:"snapshots"`
	SnapshotsInstalled int     `json:"snapshots_installed"`
	TornRepaired       int     `json:"torn_writes_repaired"`
	RefusedStarts      int     `json:"refused_starts"`
	// Peer messages Step refused: all of them, and those from another
	// cluster, addressed to another member, or from a removed member.
	RejectedMsgs       int     `json:"rejected_msgs"`
	RejectedCluster    int     `json:"rejected_cluster"`
	RejectedMember     int     `json:"rejected_member"`
	RejectedRemoved    int     `json:"rejected_removed"`
	LongestUnavailable float64 `json:"longest_unavailable_seconds"`
	SimSeconds         float64 `json:"sim_seconds"`
	WallSeconds        float64 `json:"wall_seconds"` // the caller's: how long the run took on the wall clock
	Events             int     `json:"events"`
	TraceHash          string  `json:"trace_hash"`
	Checks             []Check `json:"checks"`
	Error              string  `json:"error,omitempty"`
	// Reproduce is the one-line command that repeats a run that did not
	// pass; empty for one that did. The caller's.
	Reproduce string `json:"reproduce,omitempty"`
	// Artifacts are the files the caller saved for a run that did not
	// pass (trace, history, porcupine's view). The caller's.
	Artifacts []string `json:"artifacts,omitempty"`
}

// Summary returns r's summary, without the caller's fields (WallSeconds,
// Reproduce, Artifacts).
func (r *Result) Summary() Summary {
	return Summary{
		Scenario:           r.Scenario,
		Seed:               r.Seed,
		Verdict:            r.Verdict,
		Linearizable:       r.Linearizable,
		Ops:                r.Ops,
		OpsOK:              r.OpsOK,
		OpsFailed:          r.OpsFailed,
		OpsUnknown:         r.OpsUnknown,
		Elections:          r.Elections,
		Crashes:            r.Crashes,
		Snapshots:          r.Snapshots,
		SnapshotsInstalled: r.SnapshotsInstalled,
		TornRepaired:       r.TornRepaired,
		RefusedStarts:      r.RefusedStarts,
		RejectedMsgs:       r.RejectedMsgs,
		RejectedCluster:    r.RejectedCluster,
		RejectedMember:     r.RejectedMember,
		RejectedRemoved:    r.RejectedRemoved,
		LongestUnavailable: r.LongestUnavailable.Seconds(),
		SimSeconds:         r.SimTime.Seconds(),
		Events:             r.Events,
		TraceHash:          r.TraceHash,
		Checks:             r.Checks,
		Error:              r.Error,
	}
}
