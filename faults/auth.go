package faults

import (
	"time"

	"gopkg.in/yaml.v3"
)

// Auth turns on etcd's authentication in the simulated cluster. Before the
// clients start, the operator makes root and Users users, each with a
// role of its own that may read and write every key, and enables
// authentication; workload client i then acts as user i mod Users. Every
// ToggleEvery the operator revokes one user's permission, or grants it
// back, through raft: a user's revoke, then its grant, then the next
// user's, so that the other users keep theirs meanwhile. The auth check holds
// the clients' answers to the operator's acknowledged changes.
type Auth struct {
	// Users is how many users the clients act as: 0 (the default)
	// without an auth section, 2 with one; 1..16.
	Users int
	// ToggleEvery is the time between one permission change's
	// acknowledgement and the next change; default 1s, 10ms..1h.
	ToggleEvery time.Duration
}

const maxAuthUsers = 16

func (p *parser) auth(n *yaml.Node, a *Auth) error {
	s, err := p.section(path{field: "auth"}, n, "users", "toggle_every")
	if err != nil {
		return err
	}
	*a = Auth{Users: 2, ToggleEvery: time.Second}
	s.integer("users", &a.Users, 1, maxAuthUsers)
	s.duration("toggle_every", &a.ToggleEvery, 10*time.Millisecond, maxDuration)
	return s.err
}
