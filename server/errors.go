package server

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/mvcc"
)

// grpcErrors maps the node's and the state machine's errors to the gRPC
// statuses etcd returns for them (rpctypes), so that clientv3 turns them
// back into its own typed errors (rpctypes.ErrNoLeader, ErrCompacted, ...).
var grpcErrors = []struct {
	err  error
	grpc error
}{
	{node.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
	{node.ErrLeaderChanged, rpctypes.ErrGRPCLeaderChanged},
	{node.ErrTimeout, rpctypes.ErrGRPCTimeout},
	{node.ErrTooManyRequests, rpctypes.ErrGRPCRequestTooManyRequests},
	{node.ErrRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	{node.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{node.ErrLeaseExists, rpctypes.ErrGRPCLeaseExist},
	{node.ErrLeaseTTLTooLarge, rpctypes.ErrGRPCLeaseTTLTooLarge},
	{node.ErrNotLeader, rpctypes.ErrGRPCNotLeader},
	{node.ErrMemberNotFound, rpctypes.ErrGRPCMemberNotFound},
	{node.ErrPeerURLExist, rpctypes.ErrGRPCPeerURLExist},
	{node.ErrMemberBadURLs, rpctypes.ErrGRPCMemberBadURLs},
	{node.ErrIDExists, rpctypes.ErrGRPCMemberExist},
	{node.ErrIDRemoved, rpctypes.ErrGRPCMemberNotFound},
	// Before ErrStopped, which it wraps: a write the member had proposed
	// may still commit, and the client must not read "server stopped" (a
	// definite failure) for it. etcd has no error for that; Unavailable
	// is what it uses for its other unknown outcomes (timeouts, leader
	// changed), and clientv3 does not retry a write on it.
	{node.ErrStoppedInFlight, status.Error(codes.Unavailable, node.ErrStoppedInFlight.Error())},
	{node.ErrStopped, rpctypes.ErrGRPCStopped},
	{node.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
	{node.ErrProposalDropped, status.Error(codes.Unavailable, node.ErrProposalDropped.Error())},
	{node.ErrMemberNotLearner, rpctypes.ErrGRPCMemberNotLearner},
	{node.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady},
	{node.ErrTooManyLearners, rpctypes.ErrGRPCTooManyLearners},
	{node.ErrNotEnoughStartedMembers, rpctypes.ErrGRPCMemberNotEnoughStarted},
	{node.ErrUnhealthy, rpctypes.ErrGRPCUnhealthy},
	{node.ErrNotSupportedForLearner, rpctypes.ErrGRPCNotSupportedForLearner},
	{node.ErrAuthNotEnabled, rpctypes.ErrGRPCAuthNotEnabled},
	{node.ErrAuthFailed, rpctypes.ErrGRPCAuthFailed},
	{node.ErrNoPasswordUser, rpctypes.ErrGRPCAuthFailed}, // which users lack a password is nobody's business
	{node.ErrRootUserNotExist, rpctypes.ErrGRPCRootUserNotExist},
	{node.ErrRootRoleNotExist, rpctypes.ErrGRPCRootRoleNotExist},
	{node.ErrUserAlreadyExist, rpctypes.ErrGRPCUserAlreadyExist},
	{node.ErrUserEmpty, rpctypes.ErrGRPCUserEmpty},
	{node.ErrUserNotFound, rpctypes.ErrGRPCUserNotFound},
	{node.ErrRoleAlreadyExist, rpctypes.ErrGRPCRoleAlreadyExist},
	{node.ErrRoleNotFound, rpctypes.ErrGRPCRoleNotFound},
	{node.ErrRoleEmpty, rpctypes.ErrGRPCRoleEmpty},
	{node.ErrPermissionNotGiven, rpctypes.ErrGRPCPermissionNotGiven},
	{node.ErrPermissionDenied, rpctypes.ErrGRPCPermissionDenied},
	{node.ErrRoleNotGranted, rpctypes.ErrGRPCRoleNotGranted},
	{node.ErrPermissionNotGranted, rpctypes.ErrGRPCPermissionNotGranted},
	{node.ErrInvalidAuthToken, rpctypes.ErrGRPCInvalidAuthToken},
	{node.ErrInvalidAuthMgmt, rpctypes.ErrGRPCInvalidAuthMgmt},
	{node.ErrAuthOldRevision, rpctypes.ErrGRPCAuthOldRevision},
	{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{mvcc.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{mvcc.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{mvcc.ErrEmptyKey, rpctypes.ErrGRPCEmptyKey},
	{mvcc.ErrTooManyOps, rpctypes.ErrGRPCTooManyOps},
	{mvcc.ErrDuplicateKey, rpctypes.ErrGRPCDuplicateKey},
	{mvcc.ErrValueProvided, rpctypes.ErrGRPCValueProvided},
	{mvcc.ErrLeaseProvided, rpctypes.ErrGRPCLeaseProvided},
	{mvcc.ErrSortTarget, rpctypes.ErrGRPCInvalidSortOption},
	{context.Canceled, rpctypes.ErrGRPCCanceled},
	{context.DeadlineExceeded, rpctypes.ErrGRPCDeadlineExceeded},
}

// toGRPC returns the gRPC status error a client sees for err: etcd's, for
// every error etcd has, and Unknown with the message for the rest.
func toGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, e := range grpcErrors {
		if errors.Is(err, e.err) {
			return e.grpc
		}
	}
	return status.Error(codes.Unknown, err.Error())
}
