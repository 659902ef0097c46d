package main

// The printers of the client commands, in etcdctl 3.7's formats: simple
// (lines, and comma-separated rows), json (the protobuf response through
// encoding/json, as etcdctl's json printer does) and table.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// writeKV prints a key and its value on a line each, or the value alone.
func writeKV(w *bytes.Buffer, hex, valueOnly bool, kv *mvccpb.KeyValue) {
	key, value := string(kv.GetKey()), string(kv.GetValue())
	if hex {
		key, value = hexEscaped(kv.GetKey()), hexEscaped(kv.GetValue())
	}
	if !valueOnly {
		fmt.Fprintln(w, key)
	}
	fmt.Fprintln(w, value)
}

// hexEscaped spells every byte as \xNN, as etcdctl's --hex does.
func hexEscaped(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, `\x%02x`, c)
	}
	return s.String()
}

// writeJSON prints v as one line of JSON. The etcd API's generated types
// carry JSON field tags, so encoding/json gives the same bytes as etcdctl.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("printing JSON: %w", err)
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// writeTable draws a table as etcdctl does: a boxed grid, the header
// centred and upper-cased, the cells right-aligned.
func writeTable(w io.Writer, table func() (header []string, rows [][]string)) error {
	header, rows := table()
	config := tablewriter.NewConfigBuilder().WithRowAlignment(tw.AlignRight).Build()
	t := tablewriter.NewTable(w, tablewriter.WithConfig(config))
	t.Header(header)
	for _, row := range rows {
		if err := t.Append(row); err != nil {
			return fmt.Errorf("printing a table: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("printing a table: %w", err)
	}
	return nil
}

// writeRows prints a table's rows as simple output: cells joined by ", ".
func writeRows(w *bytes.Buffer, table func() (header []string, rows [][]string)) {
	_, rows := table()
	for _, row := range rows {
		fmt.Fprintln(w, strings.Join(row, ", "))
	}
}

// bytesSI spells a size in SI units the way etcdctl's go-humanize does:
// "9 B", "20 kB", "2.1 GB", one decimal below ten.
func bytesSI(n uint64) string {
	if n < 10 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	exp := math.Floor(math.Log(float64(n)) / math.Log(1000))
	value := math.Floor(float64(n)/math.Pow(1000, exp)*10+0.5) / 10
	if value < 10 {
		return fmt.Sprintf("%.1f %s", value, units[int(exp)])
	}
	return fmt.Sprintf("%.0f %s", value, units[int(exp)])
}

// hexHeader and hexMember are how etcdctl's json printer shows member
// responses under --hex: IDs as hex strings, the way every other output
// names members.
type hexHeader struct {
	ClusterID string `json:"cluster_id"`
	MemberID  string `json:"member_id"`
	Revision  int64  `json:"revision,omitempty"`
	RaftTerm  uint64 `json:"raft_term,omitempty"`
}

type hexMember struct {
	ID         string   `json:"ID"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peerURLs,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

// hexMembers is a member list or update response under --hex.
type hexMembers struct {
	Header  *hexHeader   `json:"header"`
	Members []*hexMember `json:"members"`
}

func hexMembersOf(h *pb.ResponseHeader, members []*pb.Member) hexMembers {
	out := hexMembers{Members: make([]*hexMember, len(members))}
	if h != nil {
		out.Header = &hexHeader{
			ClusterID: fmt.Sprintf("%x", h.GetClusterId()), MemberID: fmt.Sprintf("%x", h.GetMemberId()),
			Revision: h.GetRevision(), RaftTerm: h.GetRaftTerm(),
		}
	}
	for i, m := range members {
		out.Members[i] = &hexMember{
			ID: fmt.Sprintf("%x", m.GetID()), Name: m.GetName(), PeerURLs: m.GetPeerURLs(),
			ClientURLs: m.GetClientURLs(), IsLearner: m.GetIsLearner(),
		}
	}
	return out
}
