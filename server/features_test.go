package server

import (
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestFeatureGates: what each of etcd's gates does in plumb: accepted at
// plumb's behaviour, a tuning gate against it warned about, a behaviour
// plumb lacks refused; AllAlpha and AllBeta stand for their stage's gates
// not given; etcd_server_feature_enabled reports what the member does.
func TestFeatureGates(t *testing.T) {
	for _, tc := range []resolveCase{
		{name: "plumb's behaviour", flags: map[string]string{"feature-gates": "LeaseCheckpoint=true,LeaseCheckpointPersist=true,InitialCorruptCheck=false"}},
		{name: "not applying", flags: map[string]string{"feature-gates": "TxnModeWriteWithSharedBuffer=false"}},
		{name: "tuning warns", flags: map[string]string{"feature-gates": "FastLeaseKeepAlive=true"},
			wantWarn: []string{"--feature-gates: FastLeaseKeepAlive=true: plumb's leader answers a keep-alive once a ReadIndex round"}},
		{name: "all beta", env: []string{"ETCD_FEATURE_GATES=AllBeta=true"},
			wantWarn: []string{"FastLeaseKeepAlive=true"}},
		{name: "lacking refused", env: []string{"ETCD_FEATURE_GATES=SetMemberLocalAddr=true"},
			wantErr: []string{"--feature-gates: plumb does not support SetMemberLocalAddr=true: plumb dials peers", "(from ETCD_FEATURE_GATES)"}},
		{name: "all alpha, one taken back", flags: map[string]string{"feature-gates": "AllAlpha=true,CompactHashCheck=false"},
			wantErr: []string{"InitialCorruptCheck=true", "PriorityRequest=true"}},
		{name: "unknown", flags: map[string]string{"feature-gates": "Nope=true"},
			wantErr: []string{"--feature-gates: unrecognized feature gate: Nope"}},
	} {
		t.Run(tc.name, tc.run)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(featureCollector(map[string]bool{"TxnModeWriteWithSharedBuffer": false, "FastLeaseKeepAlive": true}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range mfs[0].GetMetric() {
		got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	want := map[string]float64{"AllAlpha": 0, "AllBeta": 0, "CompactHashCheck": 0, "FastLeaseKeepAlive": 0, "InitialCorruptCheck": 0,
		"LeaseCheckpoint": 1, "LeaseCheckpointPersist": 1, "PriorityRequest": 0, "SetMemberLocalAddr": 0,
		"StopGRPCServiceOnDefrag": 0, "TxnModeWriteWithSharedBuffer": 0}
	if !maps.Equal(got, want) {
		t.Errorf("etcd_server_feature_enabled %v, want %v", got, want)
	}
}

// TestExperimentalFlagsNamedAsEtcd37: etcd 3.6's --experimental-* flags
// are refused on the command line, naming etcd 3.7's flag or gate, and
// ignored with that name in the environment and the file; etcd's flags
// that plumb lacks are taken on the command line by rule 6.
func TestExperimentalFlagsNamedAsEtcd37(t *testing.T) {
	for _, tc := range []resolveCase{
		{name: "flag", flags: map[string]string{"experimental-initial-corrupt-check": "true"},
			wantErr: []string{"--experimental-initial-corrupt-check: etcd 3.7 removed this flag (and refuses it); its name is now --feature-gates=InitialCorruptCheck=true"}},
		{name: "variable", env: []string{"ETCD_EXPERIMENTAL_CORRUPT_CHECK_TIME=1m"},
			wantWarn: []string{`--experimental-corrupt-check-time: ignoring "1m": etcd 3.7 removed this setting; its name is now --corrupt-check-time`}},
		{name: "etcd-only flag refused", flags: map[string]string{"wal-dir": "/wal"},
			wantErr: []string{`--wal-dir: "/wal": plumb does not support a separate WAL directory yet`, "(from the command line)"}},
		{name: "etcd-only flag ignored", flags: map[string]string{"max-wals": "9"},
			wantWarn: []string{`--max-wals: ignoring "9"`}},
		{name: "etcd-only switch at etcd's default", flags: map[string]string{"pre-vote": "true"}},
	} {
		t.Run(tc.name, tc.run)
	}
}
