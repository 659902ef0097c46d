// Package e2e holds plumb's end-to-end tests: real `plumb node serve`
// processes on loopback addresses (127.0.0.1, 127.0.0.2, 127.0.0.3, as the
// seeds' three hosts), driven by etcd's Go client and by real etcdctl 3.7,
// and killed with SIGKILL under load. It has no code of its own outside its
// tests; it imports nothing from the project but linearizability (to check
// the histories the tests record).
//
// etcdctl comes from ../shared/tools/etcd-ref (or PLUMB_ETCD_REF_DIR); the
// tests that need it skip without it, unless PLUMB_REQUIRE_ETCD_REF=1 (CI)
// makes its absence a failure.
package e2e
