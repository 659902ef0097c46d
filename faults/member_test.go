package faults

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseMemberFaults(t *testing.T) {
	const file = `name: grow
duration: 30s
cluster: {members: 1}
faults:
  - {at: 2s, member_add: voter}
  - {at: 4s, member_add: learner}
  - {at: 6s, member_promote: n3}
  - {at: 8s, kill: n2, restart_after: 1s}
  - {at: 10s, member_remove: leader}
  - {at: 12s, member_replace: follower}
  - {at: 14s, ip_reuse: {address_of: removed, by: new_member}}
  - {at: 16s, ip_reuse: {address_of: n2, by: other_cluster}}
  - {at: 18s, partition: {isolate: n4, for: 1s}}
`
	s, err := Parse("grow.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, f := range s.Faults {
		kinds = append(kinds, f.Kind())
	}
	want := []string{"member_add", "member_add", "member_promote", "kill", "member_remove", "member_replace", "ip_reuse", "ip_reuse", "partition"}
	if !reflect.DeepEqual(kinds, want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}
	f := s.Faults
	if f[0].MemberAdd.Learner || !f[1].MemberAdd.Learner || *f[2].MemberPromote != (Target{Member: 3}) ||
		*f[4].MemberRemove != (Target{Leader: true}) || *f[5].MemberReplace != (Target{Follower: true}) {
		t.Errorf("member faults read wrong: %+v", f)
	}
	if r := f[6].IPReuse; !r.Removed || !r.NewMember || r.OtherCluster {
		t.Errorf("ip_reuse 1 = %+v", r)
	}
	if r := f[7].IPReuse; r.AddressOf != (Target{Member: 2}) || !r.OtherCluster || r.NewMember {
		t.Errorf("ip_reuse 2 = %+v", r)
	}
}

func TestParseMemberFaultErrors(t *testing.T) {
	const head = "name: x\nduration: 30s\ncluster: {members: 3}\nfaults:\n  - " // fault i on line 4+i
	for _, tc := range []struct {
		name, faults string
		line         int
		msg          string
	}{
		{"add kind", "{at: 1s, member_add: witness}", 5, `member_add: "witness" is not a kind of member (use voter or learner)`},
		{"add option", "{at: 1s, member_add: voter, restart_after: 1s}", 5, "restart_after is only for kill faults"},
		{"promote leader", "{at: 1s, member_promote: leader}", 5, "member_promote: leader: name the killed member instead"},
		{"name before its add", "{at: 1s, kill: n4}\n  - {at: 2s, member_add: voter}", 5,
			"fault at 1s: n4 does not exist yet (by then n1..n3"},
		{"name never added", "{at: 1s, kill: n5}\n  - {at: 2s, member_add: voter}", 5, `unknown member "n5"`},
		{"too many", "{at: 1s, member_add: voter}\n  - {at: 2s, member_add: voter}\n  - {at: 3s, member_add: voter}\n  - {at: 4s, member_add: voter}\n  - {at: 5s, member_add: voter}", 9,
			"member_add would make the cluster 8 members; at most 7"},
		{"remove the last", "{at: 1s, member_remove: n1}\n  - {at: 2s, member_remove: n2}\n  - {at: 3s, member_remove: n3}", 7,
			"member_remove of the only member"},
		{"follower of one", "{at: 1s, member_remove: n1}\n  - {at: 2s, member_remove: n2}\n  - {at: 3s, kill: follower}", 7,
			"follower: the cluster has one member then"},
		{"reuse without by", "{at: 1s, ip_reuse: {address_of: n1}}", 5, "missing by"},
		{"reuse by", "{at: 1s, ip_reuse: {address_of: n1, by: me}}", 5, `ip_reuse.by: "me": use new_member or other_cluster`},
		{"reuse of leader", "{at: 1s, ip_reuse: {address_of: leader, by: new_member}}", 5, "name a member (n1..n4), or removed or moved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(head+tc.faults+"\n"))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want an *Error", err)
			}
			if e.Line != tc.line || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("got  %v\nwant x.yaml:%d: ...%s...", err, tc.line, tc.msg)
			}
		})
	}
}
