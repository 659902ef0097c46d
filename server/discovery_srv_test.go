package server

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/plumbdb/plumb/internal/dnstest"
)

// srvZone is the seeds' example.com: three members infra0..2 on
// 127.0.0.1..3, peer port 2380.
var srvZone = []string{
	"infra0.example.com. 300 IN A 127.0.0.1",
	"infra1.example.com. 300 IN A 127.0.0.2",
	"infra2.example.com. 300 IN A 127.0.0.3",
	"infra3.example.com. 300 IN A 127.0.0.4",
}

func srvRecords(service string, targets ...string) []string {
	var out []string
	for _, target := range targets {
		host, port, _ := strings.Cut(target, ":")
		out = append(out, "_"+service+"._tcp.example.com. 300 IN SRV 0 0 "+port+" "+host+".example.com.")
	}
	return out
}

func srvConfig(name, advertise string) *Config {
	return &Config{Name: name, InitialAdvertisePeerURLs: []string{advertise}, DiscoverySRV: "example.com"}
}

// TestSRVCluster resolves etcd's SRV records against a DNS server on a
// loopback address: the member is recognised by resolving its advertised
// peer URL, the others are named 0, 1, ...; the URLs are the records'
// targets; _etcd-server-ssl records make https peer URLs, and join the
// plain ones as in etcd, while one that names this member under the other
// scheme is skipped as etcd skips it; --discovery-srv-name picks other records; a member missing from the
// records gets etcd's error.
func TestSRVCluster(t *testing.T) {
	three := srvRecords("etcd-server", "infra0:2380", "infra1:2380", "infra2:2380")
	for _, tc := range []struct {
		name    string
		records []string
		cfg     *Config
		want    map[string]string // member URL -> name, "" for a temporary name
		wantErr []string
	}{
		{name: "the seeds' records", records: three, cfg: srvConfig("infra0", "http://infra0.example.com:2380"),
			want: map[string]string{"http://infra0.example.com:2380": "infra0", "http://infra1.example.com:2380": "",
				"http://infra2.example.com:2380": ""}},
		{name: "the member is told by its port", cfg: srvConfig("b", "http://infra0.example.com:2381"),
			records: srvRecords("etcd-server", "infra0:2380", "infra0:2381", "infra0:2382"),
			want: map[string]string{"http://infra0.example.com:2380": "", "http://infra0.example.com:2381": "b",
				"http://infra0.example.com:2382": ""}},
		{name: "the member is not in the records", records: three, cfg: srvConfig("infra3", "http://infra3.example.com:2380"),
			wantErr: []string{`cannot find local etcd member "infra3" in SRV records`, "_etcd-server._tcp.example.com lists"}},
		{name: "advertised by address, not by the record's name", records: three, cfg: srvConfig("infra0", "http://127.0.0.1:2380"),
			wantErr: []string{"the SRV records give this member (infra0) the peer URLs http://infra0.example.com:2380, but --initial-advertise-peer-urls is http://127.0.0.1:2380",
				"--initial-advertise-peer-urls http://infra0.example.com:2380"}},
		{name: "ssl records make https peer URLs", cfg: srvConfig("infra0", "https://infra0.example.com:2380"),
			records: srvRecords("etcd-server-ssl", "infra0:2380", "infra1:2380", "infra2:2380"),
			want: map[string]string{"https://infra0.example.com:2380": "infra0", "https://infra1.example.com:2380": "",
				"https://infra2.example.com:2380": ""}},
		{name: "ssl and plain records together, as etcd takes them", cfg: srvConfig("infra0", "https://infra0.example.com:2380"),
			records: append(srvRecords("etcd-server-ssl", "infra0:2380", "infra1:2380"), srvRecords("etcd-server", "infra2:2380")...),
			want: map[string]string{"https://infra0.example.com:2380": "infra0", "https://infra1.example.com:2380": "",
				"http://infra2.example.com:2380": ""}},
		{name: "an ssl record of this member only is skipped", cfg: srvConfig("infra0", "http://infra0.example.com:2380"),
			records: append(srvRecords("etcd-server-ssl", "infra0:2380"), srvRecords("etcd-server", "infra0:2380")...),
			want:    map[string]string{"http://infra0.example.com:2380": "infra0"}},
		{name: "no records", records: nil, cfg: srvConfig("infra0", "http://infra0.example.com:2380"),
			wantErr: []string{"error querying DNS SRV records for _etcd-server-ssl lookup _etcd-server-ssl._tcp.example.com on 127.0.0.9:",
				"error querying DNS SRV records for _etcd-server lookup _etcd-server._tcp.example.com on 127.0.0.9:", "no such host"}},
		{name: "a target without an address is skipped", cfg: srvConfig("infra0", "http://infra0.example.com:2380"),
			records: srvRecords("etcd-server", "infra0:2380", "nowhere:2380"),
			want:    map[string]string{"http://infra0.example.com:2380": "infra0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := dnstest.Serve(t, "127.0.0.9", append(tc.records, srvZone...)...)
			tc.cfg.DiscoverySRVResolver = addr
			m, err := srvCluster(context.Background(), newDNSResolver(addr), tc.cfg, quietLogger())
			checkError(t, err, tc.wantErr, false)
			if err != nil {
				return
			}
			checkSRVMembers(t, m, tc.want)
		})
	}
}

// checkSRVMembers checks the members by URL: the named ones by name, the
// others under the temporary names 0, 1, ... (in the answer's order,
// which DNS shuffles).
func checkSRVMembers(t *testing.T, m map[string][]string, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	var temp []string
	for name, urls := range m {
		if len(urls) != 1 {
			t.Errorf("member %s has peer URLs %v, want one", name, urls)
		}
		for _, u := range urls {
			if want[u] == "" {
				temp = append(temp, name)
				got[u] = ""
				continue
			}
			got[u] = name
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("members %v, want %v (by URL; \"\" is a temporary name)", m, want)
	}
	slices.Sort(temp)
	for i, name := range temp {
		if want := string(rune('0' + i)); name != want {
			t.Errorf("temporary names %v, want 0, 1, ...", temp)
			break
		}
	}
}

// TestSRVClusterName: --discovery-srv-name NAME asks for
// _etcd-server-NAME._tcp.DOMAIN, etcd's GetSRVService, and ignores the
// unsuffixed records (another cluster's).
func TestSRVClusterName(t *testing.T) {
	records := append(srvRecords("etcd-server", "infra3:2380"),
		srvRecords("etcd-server-prod", "infra0:2380", "infra1:2380")...)
	r := newDNSResolver(dnstest.Serve(t, "127.0.0.9", append(records, srvZone...)...))
	cfg := srvConfig("infra0", "http://infra0.example.com:2380")
	cfg.DiscoverySRVName = "prod"
	m, err := srvCluster(context.Background(), r, cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	checkSRVMembers(t, m, map[string]string{"http://infra0.example.com:2380": "infra0", "http://infra1.example.com:2380": ""})

	cfg = srvConfig("infra3", "http://infra3.example.com:2380")
	cfg.DiscoverySRVName = "prod"
	if _, err := srvCluster(context.Background(), r, cfg, quietLogger()); err == nil ||
		!strings.Contains(err.Error(), `cannot find local etcd member "infra3" in SRV records (_etcd-server-prod._tcp.example.com lists`) {
		t.Errorf("a member only in the unsuffixed records: %v", err)
	}
}
