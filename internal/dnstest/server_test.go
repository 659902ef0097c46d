package dnstest_test

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/plumbdb/plumb/internal/dnstest"
)

// TestServe asks the server over UDP and TCP for a record it has, a type
// it lacks for a known name (an empty answer) and an unknown name
// (NXDOMAIN).
func TestServe(t *testing.T) {
	addr := dnstest.Serve(t, "127.0.0.1",
		"infra0.example.com. 300 IN A 127.0.0.1",
		"_etcd-server._tcp.example.com. 300 IN SRV 0 0 2380 infra0.example.com.")
	for _, tc := range []struct {
		name    string
		qtype   uint16
		rcode   int
		answers int
	}{
		{"infra0.example.com.", dns.TypeA, dns.RcodeSuccess, 1},
		{"INFRA0.example.com.", dns.TypeA, dns.RcodeSuccess, 1},
		{"_etcd-server._tcp.example.com.", dns.TypeSRV, dns.RcodeSuccess, 1},
		{"infra0.example.com.", dns.TypeAAAA, dns.RcodeSuccess, 0},
		{"infra9.example.com.", dns.TypeA, dns.RcodeNameError, 0},
	} {
		for _, net := range []string{"udp", "tcp"} {
			q := new(dns.Msg).SetQuestion(tc.name, tc.qtype)
			resp, _, err := (&dns.Client{Net: net}).Exchange(q, addr)
			if err != nil {
				t.Fatalf("%s %s over %s: %v", tc.name, dns.TypeToString[tc.qtype], net, err)
			}
			if resp.Rcode != tc.rcode || len(resp.Answer) != tc.answers || !resp.Authoritative {
				t.Errorf("%s %s over %s: rcode %s, %d answers, authoritative %v; want %s, %d, true",
					tc.name, dns.TypeToString[tc.qtype], net, dns.RcodeToString[resp.Rcode], len(resp.Answer),
					resp.Authoritative, dns.RcodeToString[tc.rcode], tc.answers)
			}
		}
	}
}
