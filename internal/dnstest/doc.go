// Package dnstest serves DNS records for tests, as net/http/httptest serves
// HTTP: a small authoritative server on a loopback address that the code
// under test is pointed at (plumb's --discovery-srv-resolver), so DNS
// discovery is tested against real DNS messages without touching
// /etc/resolv.conf.
//
// What belongs here: fakes of the DNS that tests in more than one package
// need (server's SRV discovery tests and the e2e tests of the binary), and
// nothing that production code uses. deps_test keeps it so: only test
// files may import it, and it imports nothing from the project.
package dnstest
