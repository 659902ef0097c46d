package node

import (
	"errors"
	"fmt"
)

// Errors a Reply can carry. Their messages are etcd's own (etcdserver and
// rpctypes), so the server maps each to the rpctypes error clientv3 knows.
var (
	// ErrNoLeader: the member knows no leader, so the request was never
	// proposed. The outcome is known: nothing happened.
	ErrNoLeader = errors.New("etcdserver: no leader")
	// ErrLeaderChanged: the leader changed while the request was in flight.
	// A write may or may not take effect (see OutcomeUnknown).
	ErrLeaderChanged = errors.New("etcdserver: leader changed")
	// ErrTimeout: the request was not answered within the request timeout.
	// A write may or may not take effect (see OutcomeUnknown).
	ErrTimeout = errors.New("etcdserver: request timed out")
	// ErrTooManyRequests: more requests are pending than Config.MaxPendingRequests.
	ErrTooManyRequests = errors.New("etcdserver: too many requests")
	// ErrRequestTooLarge: the encoded request exceeds Config.MaxRequestBytes.
	ErrRequestTooLarge = errors.New("etcdserver: request is too large")
	// ErrLeaseNotFound: the request names a lease the cluster does not have.
	ErrLeaseNotFound = errors.New("etcdserver: requested lease not found")
	// ErrLeaseExists: a grant names a lease ID that is already granted.
	ErrLeaseExists = errors.New("etcdserver: lease already exists")
	// ErrLeaseTTLTooLarge: a grant asks for a TTL above MaxLeaseTTL.
	ErrLeaseTTLTooLarge = errors.New("etcdserver: too large lease TTL")
	// ErrNotLeader: a lease keep-alive or time-to-live reached a member that
	// is not the leader, which alone keeps lease time. Nothing happened;
	// the driver forwards the request to the leader.
	ErrNotLeader = errors.New("etcdserver: not leader")
	// ErrMemberNotFound: a member request names an unknown member ID.
	ErrMemberNotFound = errors.New("etcdserver: member not found")
	// ErrPeerURLExist: member add or update would give two members one peer URL.
	ErrPeerURLExist = errors.New("etcdserver: Peer URLs already exists")
	// ErrMemberBadURLs: member add or update names no peer URL, or one
	// that is not http(s)://host:port or unix(s)://, as etcd's
	// types.NewURLs checks. A member given such a URL could never be
	// reached again.
	ErrMemberBadURLs = errors.New("etcdserver: given member URLs are invalid")
	// ErrIDRemoved: the member ID was removed from the cluster and cannot return.
	ErrIDRemoved = errors.New("etcdserver: ID removed")
	// ErrMemberNotLearner: promote names a member that already votes.
	ErrMemberNotLearner = errors.New("etcdserver: can only promote a learner member")
	// ErrLearnerNotReady: promote names a learner whose log is not yet
	// within 10% of the leader's.
	ErrLearnerNotReady = errors.New("etcdserver: can only promote a learner member which is in sync with leader")
	// ErrTooManyLearners: member add of a learner beyond Config.MaxLearners.
	ErrTooManyLearners = errors.New("etcdserver: too many learner members in cluster")
	// ErrNotEnoughStartedMembers: the change would leave fewer started
	// voters than a quorum (with the strict reconfiguration check), or
	// remove the last voter.
	ErrNotEnoughStartedMembers = errors.New("etcdserver: re-configuration failed due to not enough started members")
	// ErrUnhealthy: with the strict reconfiguration check, a voter the
	// change needs is not reachable from the leader.
	ErrUnhealthy = errors.New("etcdserver: unhealthy cluster")
	// ErrNotSupportedForLearner: a learner serves serializable reads only.
	ErrNotSupportedForLearner = errors.New("etcdserver: rpc not supported for learner")
	// ErrEmptyRequest: a Request with no operation set.
	ErrEmptyRequest = errors.New("etcdserver: empty request")
	// ErrStopped: the member is shutting down or was removed. A node
	// answers it only to requests it never proposed: nothing happened.
	ErrStopped = errors.New("etcdserver: server stopped")
	// ErrStoppedInFlight: the member stopped (its storage failed, or it was
	// removed) after it had proposed the write. The proposal may already be
	// in other members' logs and commit: the outcome is unknown (see
	// OutcomeUnknown). It wraps ErrStopped, since the member is stopped
	// either way; check OutcomeUnknown before taking ErrStopped as a
	// failure.
	ErrStoppedInFlight = fmt.Errorf("%w with the request in flight; it may still take effect", ErrStopped)
)

// Errors from Step: a peer message that must not reach raft. The transport
// logs them and drops the message. A host that took over a removed or moved
// member's address, or a member of another cluster, must never be heard.
var (
	ErrClusterMismatch = errors.New("node: message from another cluster")
	ErrWrongMember     = errors.New("node: message addressed to another member")
	ErrRemovedMember   = errors.New("node: message from a removed member")
)

// OutcomeUnknown reports whether a failed write may still take effect.
// Callers record such a write as unknown, never as failed: a client history
// that guessed would make the linearizability check lie.
func OutcomeUnknown(err error) bool {
	return errors.Is(err, ErrLeaderChanged) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrStoppedInFlight)
}
