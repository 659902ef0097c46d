package mvcc

import "errors"

// Errors of the state machine, with etcd's messages. The node maps them to
// etcd's gRPC status codes (ErrCompacted and ErrFutureRev are OutOfRange,
// the validation errors InvalidArgument).
var (
	// ErrCompacted: the requested revision is below the compaction point.
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	// ErrFutureRev: the requested revision is above the current revision.
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
	// ErrKeyNotFound: a Put with ignore_value or ignore_lease names a key
	// that does not exist, or a transaction holds an empty operation.
	ErrKeyNotFound = errors.New("etcdserver: key not found")
	// ErrLeaseNotFound: a put names a lease that does not exist when it is
	// applied (see Write.CheckLeases). etcd's gRPC form is "etcdserver:
	// requested lease not found".
	ErrLeaseNotFound = errors.New("lease not found")

	// ErrEmptyKey and the errors below are ValidateTxn's.
	ErrEmptyKey      = errors.New("etcdserver: key is not provided")
	ErrTooManyOps    = errors.New("etcdserver: too many operations in txn request")
	ErrDuplicateKey  = errors.New("etcdserver: duplicate key given in txn request")
	ErrValueProvided = errors.New("etcdserver: value is provided")
	ErrLeaseProvided = errors.New("etcdserver: lease is provided")

	// ErrSortTarget: a Range asks to sort on a target etcd does not know.
	// etcd panics the member on such a request; plumb rejects the request.
	ErrSortTarget = errors.New("mvcc: unknown range sort target")
	// ErrTxnNotReadOnly: ReadTxn was given a transaction that may write.
	ErrTxnNotReadOnly = errors.New("mvcc: transaction is not read-only")
)
