package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/node/backend/bolt"
)

// TestSnapshotStream: Maintenance.Snapshot sends the bbolt file as etcd
// does, in 32 KiB chunks whose remaining_bytes count down to 0, then its
// sha256 in one more message; the file holds every acknowledged write.
func TestSnapshotStream(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	defer s.Stop()
	cli := clientOf(t, cfg)
	value := strings.Repeat("v", 1024)
	const keys = 200
	for i := range keys {
		putRetrying(t, cli, fmt.Sprintf("snap/%04d", i), value)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Snapshot(ctx, &pb.SnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*pb.SnapshotResponse
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d messages: %v", len(msgs), err)
		}
		msgs = append(msgs, resp)
	}
	if len(msgs) < 3 {
		t.Fatalf("%d messages for a file of more than %d KiB, want several chunks and the checksum", len(msgs), keys)
	}
	var db []byte
	for i, m := range msgs[:len(msgs)-1] {
		if i < len(msgs)-2 && len(m.Blob) != snapshotSendBytes {
			t.Fatalf("chunk %d has %d bytes, want %d", i, len(m.Blob), snapshotSendBytes)
		}
		db = append(db, m.Blob...)
		if want := msgs[len(msgs)-2].RemainingBytes; i == len(msgs)-2 && want != 0 {
			t.Fatalf("the last chunk says %d bytes remain, want 0", want)
		}
		if i > 0 && m.RemainingBytes+uint64(len(m.Blob)) != msgs[i-1].RemainingBytes {
			t.Fatalf("chunk %d: remaining %d + %d bytes != the previous remaining %d", i, m.RemainingBytes, len(m.Blob), msgs[i-1].RemainingBytes)
		}
	}
	if first := msgs[0]; first.RemainingBytes+uint64(len(first.Blob)) != uint64(len(db)) {
		t.Fatalf("the first chunk announces %d bytes, the stream carried %d", first.RemainingBytes+uint64(len(first.Blob)), len(db))
	}
	sum := sha256.Sum256(db)
	if last := msgs[len(msgs)-1]; last.RemainingBytes != 0 || !bytes.Equal(last.Blob, sum[:]) {
		t.Fatalf("the last message is %d bytes (remaining %d), want the file's sha256 %x", len(last.Blob), last.RemainingBytes, sum)
	}
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, db, 0o600); err != nil {
		t.Fatal(err)
	}
	be, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("the snapshot is not a bbolt file: %v", err)
	}
	defer be.Close()
	n := 0
	if err := be.ForEach([]byte("key"), func(k, v []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n < keys {
		t.Fatalf("the snapshot holds %d revisions in bucket key, want at least the %d acknowledged puts", n, keys)
	}
}
