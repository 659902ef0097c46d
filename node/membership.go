package node

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node/backend"
)

// Member is one member of the cluster as the replicated state knows it.
// Its identity is its ID; its URLs may change (member update).
type Member struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	// IsLearner: the member receives the log but does not vote, and
	// counts in no quorum, until it is promoted.
	IsLearner bool `json:"isLearner,omitempty"`
}

// MemberID derives a member's ID the way etcd does: from its sorted peer URLs
// and the cluster token, so every member computes the same IDs from the same
// --initial-cluster. salt distinguishes members added later with reused URLs
// (etcd uses the time of the add); it is empty at bootstrap.
func MemberID(peerURLs []string, token string, salt string) uint64 {
	urls := slices.Clone(peerURLs)
	sort.Strings(urls)
	var b []byte
	for _, u := range urls {
		b = append(b, u...)
	}
	b = append(b, token...)
	b = append(b, salt...)
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// ClusterID derives the cluster ID from the initial member IDs, like etcd.
func ClusterID(memberIDs []uint64) uint64 {
	ids := slices.Clone(memberIDs)
	slices.Sort(ids)
	b := make([]byte, 8*len(ids))
	for i, id := range ids {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// FormatID prints an ID as etcd does (lower-case hex, no padding).
func FormatID(id uint64) string { return strconv.FormatUint(id, 16) }

var (
	bucketMembers        = []byte("members")
	bucketMembersRemoved = []byte("members_removed")
)

// membership is the applied view of the members. It changes only when a
// committed conf change or attribute update is applied, so every member
// holds the same one at the same applied index.
type membership struct {
	members map[uint64]*Member
	removed map[uint64]bool
}

func loadMembership(r backend.Reader) (*membership, error) {
	ms := &membership{members: map[uint64]*Member{}, removed: map[uint64]bool{}}
	err := r.ForEach(bucketMembers, func(k, v []byte) error {
		var m Member
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("member %s: %w", k, err)
		}
		ms.members[m.ID] = &m
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load members: %w", err)
	}
	err = r.ForEach(bucketMembersRemoved, func(k, _ []byte) error {
		id, err := strconv.ParseUint(string(k), 16, 64)
		if err != nil {
			return fmt.Errorf("removed member %q: %w", k, err)
		}
		ms.removed[id] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load removed members: %w", err)
	}
	return ms, nil
}

// sorted returns copies of the members in ID order.
func (ms *membership) sorted() []Member {
	out := make([]Member, 0, len(ms.members))
	for _, m := range ms.members {
		out = append(out, cloneMember(*m))
	}
	slices.SortFunc(out, func(a, b Member) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// voters counts the members that vote.
func (ms *membership) voters() int {
	n := 0
	for _, m := range ms.members {
		if !m.IsLearner {
			n++
		}
	}
	return n
}

// learners counts the members that are learners.
func (ms *membership) learners() int { return len(ms.members) - ms.voters() }

// peerURLOwner returns the member that has url among its peer URLs.
func (ms *membership) peerURLOwner(url string) (uint64, bool) {
	for _, m := range ms.sorted() {
		if slices.Contains(m.PeerURLs, url) {
			return m.ID, true
		}
	}
	return 0, false
}

func (ms *membership) put(b backend.Batch, m Member) {
	m = cloneMember(m)
	ms.members[m.ID] = &m
	v, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("node: encode member %s: %v", FormatID(m.ID), err))
	}
	b.Put(bucketMembers, []byte(FormatID(m.ID)), v)
}

func (ms *membership) remove(b backend.Batch, id uint64) {
	delete(ms.members, id)
	ms.removed[id] = true
	b.Delete(bucketMembers, []byte(FormatID(id)))
	b.Put(bucketMembersRemoved, []byte(FormatID(id)), []byte{1})
}

func cloneMember(m Member) Member {
	m.PeerURLs = slices.Clone(m.PeerURLs)
	m.ClientURLs = slices.Clone(m.ClientURLs)
	return m
}

// withCheckedPeerURLs checks the peer URLs of a member add or update as
// etcd's API does (types.NewURLs): at least one, each http(s)://host:port
// without a path, or unix(s)://. A member given a URL nobody can dial would
// be cut off from the cluster. The request it returns carries the URLs in
// their parsed form, as etcd stores them (surrounding spaces go), in the
// order given (the first is where peers send); it is a copy, the caller's
// message is not changed.
func withCheckedPeerURLs(req Request) (Request, error) {
	var urls []string
	switch {
	case req.MemberAdd != nil:
		urls = req.MemberAdd.PeerURLs
	case req.MemberUpdate != nil:
		urls = req.MemberUpdate.PeerURLs
	default:
		return req, nil
	}
	if _, err := types.NewURLs(urls); err != nil {
		return req, fmt.Errorf("%w: %v", ErrMemberBadURLs, err)
	}
	clean := make([]string, len(urls))
	for i, u := range urls {
		one, err := types.NewURLs([]string{u}) // NewURLs sorts: one at a time keeps the order
		if err != nil {
			panic(fmt.Sprintf("node: peer URL %q passed the check with the others but not alone: %v", u, err))
		}
		clean[i] = one[0].String()
	}
	if req.MemberAdd != nil {
		req.MemberAdd = proto.CloneOf(req.MemberAdd)
		req.MemberAdd.PeerURLs = clean
	} else {
		req.MemberUpdate = proto.CloneOf(req.MemberUpdate)
		req.MemberUpdate.PeerURLs = clean
	}
	return req, nil
}
