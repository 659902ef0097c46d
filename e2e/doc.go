// Package e2e holds plumb's end-to-end tests: real `plumb node serve`
// processes on loopback addresses (127.0.0.1, 127.0.0.2, 127.0.0.3, as the
// seeds' three hosts), driven by etcd's Go client and by real etcdctl 3.7,
// and killed with SIGKILL under load. It has no code of its own outside its
// tests; it imports nothing from the project but linearizability (to check
// the histories the tests record) and internal/dnstest (the DNS server that
// the DNS discovery test points the members at).
//
// etcdctl comes from ../shared/tools/etcd-ref (or PLUMB_ETCD_REF_DIR), and
// so does etcd 3.7.3 itself for the tests that compare plumb's answers with
// etcd's; the tests that need them skip without them, unless
// PLUMB_REQUIRE_ETCD_REF=1 (CI) makes their absence a failure.
package e2e
