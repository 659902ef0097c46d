package faults

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// The operator's membership changes, as the seeds' day-two procedures make
// them with etcdctl: each goes through the client API, is retried as an
// operator would, and its effect lasts as long as the operator takes.

// MemberAdd adds a member at a fresh address: the operator runs member add
// and, once it is acknowledged, starts the new member with an empty disk
// and initial-cluster-state existing. The new member is named n<k+1> when
// k names exist before it (the initial members and those added earlier).
type MemberAdd struct {
	Learner bool // member add --learner; member_promote makes it a voter
}

// IPReuse gives an address that a member left (removed, or moved by a
// change_ip) to a host that is not that member: a member added for the
// purpose (NewMember), which takes the next name as a member_add's does,
// or the one member of another cluster (OtherCluster) started with the
// same cluster token, whose member ID is the one the address gave the
// bootstrap member there: only the cluster ID tells them apart.
type IPReuse struct {
	// AddressOf is whose address: a member by name (its address before its
	// last change_ip, or its own once removed), or, with Removed or Moved,
	// whichever member was last removed, or last moved, when the fault
	// fires.
	AddressOf      Target
	Removed, Moved bool
	NewMember      bool
	OtherCluster   bool
}

// countMemberAdds counts the faults that add a member (and a name), before
// any is parsed, so that a name added later is known to target.
func countMemberAdds(list []*yaml.Node) int {
	n := 0
	for _, fn := range list {
		if fn.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(fn.Content); i += 2 {
			switch k, v := fn.Content[i].Value, fn.Content[i+1]; {
			case k == "member_add":
				n++
			case k == "ip_reuse" && v.Kind == yaml.MappingNode:
				for j := 0; j+1 < len(v.Content); j += 2 {
					if v.Content[j].Value == "by" && v.Content[j+1].Value == "new_member" {
						n++
					}
				}
			}
		}
	}
	return n
}

// memberFault reads the value of a membership fault's kind key.
func (p *parser) memberFault(at path, kind string, n *yaml.Node, f *Fault) error {
	var err error
	switch kind {
	case "member_add":
		f.MemberAdd, err = p.memberAdd(at, n)
	case "member_promote":
		f.MemberPromote, err = p.restart(at, n) // a learner by name, as a restart's target
	case "member_remove":
		var t Target
		t, err = p.target(at, n)
		f.MemberRemove = &t
	case "member_replace":
		var t Target
		t, err = p.target(at, n)
		f.MemberReplace = &t
	case "ip_reuse":
		f.IPReuse, err = p.ipReuse(at, n)
	default:
		panic(fmt.Sprintf("faults: %s is not a fault kind", kind))
	}
	return err
}

func (p *parser) memberAdd(at path, n *yaml.Node) (*MemberAdd, error) {
	if err := p.scalar(at, n, "voter or learner", "!!str"); err != nil {
		return nil, err
	}
	switch n.Value {
	case "voter":
		return &MemberAdd{}, nil
	case "learner":
		return &MemberAdd{Learner: true}, nil
	}
	return nil, p.errorf(n, "%s%q is not a kind of member (use voter or learner)", at.prefix(), clip(n.Value))
}

func (p *parser) ipReuse(at path, n *yaml.Node) (*IPReuse, error) {
	s, err := p.section(at, n, "address_of", "by")
	if err != nil {
		return nil, err
	}
	for _, key := range []string{"address_of", "by"} {
		if s.f.get(key) == nil {
			return nil, p.errorf(n, "%smissing %s (e.g. ip_reuse: {address_of: n3, by: new_member})", at.prefix(), key)
		}
	}
	r := &IPReuse{}
	of := s.f.get("address_of")
	switch of.Value {
	case "removed":
		r.Removed = true
	case "moved":
		r.Moved = true
	default:
		t, err := p.restart(at.dot("address_of"), of)
		if err != nil {
			return nil, p.errorf(of, "%saddress_of: %q: name a member (n1..n%d), or removed or moved", at.prefix(), clip(of.Value), p.members)
		}
		r.AddressOf = *t
	}
	by := s.f.get("by")
	if err := p.scalar(at.dot("by"), by, "new_member or other_cluster", "!!str"); err != nil {
		return nil, err
	}
	switch by.Value {
	case "new_member":
		r.NewMember = true
	case "other_cluster":
		r.OtherCluster = true
	default:
		return nil, p.errorf(by, "%s%q: use new_member or other_cluster", at.dot("by").prefix(), clip(by.Value))
	}
	return r, nil
}

// addsMember reports whether f adds a member, and so a name.
func (f Fault) addsMember() bool {
	return f.MemberAdd != nil || f.IPReuse != nil && f.IPReuse.NewMember
}

// checkMembership walks the sorted timeline counting members: a name is
// used only once the fault that adds it has fired, the cluster never
// holds more than maxMembers members nor loses its last one, and follower
// is never asked of a cluster that has only one member. A membership fault
// that the operator cannot complete (the cluster refuses it) is retried;
// the count assumes each completes.
func (p *parser) checkMembership(faults []Fault) error {
	names, size := p.initial, p.initial
	for _, f := range faults {
		if f.addsMember() {
			names++
			size++
			if size > maxMembers {
				return p.errorAt(f.Line, "fault at %v: %s would make the cluster %d members; at most %d", f.At, f.Kind(), size, maxMembers)
			}
		}
		for _, t := range f.targets() {
			switch {
			case t.Member > names:
				return p.errorAt(f.Line, "fault at %v: %s does not exist yet (by then n1..n%d; a member_add names the next one)", f.At, t, names)
			case t.Follower && size == 1:
				return p.errorAt(f.Line, "fault at %v: follower: the cluster has one member then", f.At)
			}
		}
		if f.MemberRemove != nil {
			if size == 1 {
				return p.errorAt(f.Line, "fault at %v: member_remove of the only member: the cluster would be gone (etcd refuses it)", f.At)
			}
			size--
		}
	}
	return nil
}

// targets lists the members a fault names.
func (f Fault) targets() []Target {
	var out []Target
	add := func(ts ...*Target) {
		for _, t := range ts {
			if t != nil {
				out = append(out, *t)
			}
		}
	}
	switch {
	case f.Partition != nil:
		add(f.Partition.Isolate)
		for _, g := range f.Partition.Groups {
			out = append(out, g...)
		}
		if ow := f.Partition.OneWay; ow != nil {
			out = append(out, ow.From...)
			out = append(out, ow.To...)
		}
	case f.Kill != nil:
		add(&f.Kill.Target)
	case f.ChangeIP != nil:
		add(&f.ChangeIP.Target)
	case f.Disk != nil:
		add(&f.Disk.Target)
	case f.IPReuse != nil:
		add(&f.IPReuse.AddressOf)
	}
	add(f.Restart, f.MemberPromote, f.MemberRemove, f.MemberReplace)
	return out
}
