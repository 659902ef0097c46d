package server

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// frame is what travels on the peer port. Every frame names the cluster,
// the sender and the receiver, so that a member of another cluster that
// took over an address (or a removed member) is refused before raft hears
// it. Body is a marshalled raftpb.Message; on the snapshot stream the first
// frame carries the message without its data and DataBytes, the frames
// after it carry the data in chunks.
type frame struct {
	ClusterID, From, To uint64
	DataBytes           uint64
	Body                []byte
}

// frameCodec is the gRPC codec of the peer service: three IDs and a length
// as uvarints, then the body. The peer port speaks only this codec.
type frameCodec struct{}

const frameCodecName = "plumb-peer-v1"

func (frameCodec) Name() string { return frameCodecName }

func (frameCodec) Marshal(v any) ([]byte, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("peer codec: cannot marshal %T", v)
	}
	out := make([]byte, 0, 4*binary.MaxVarintLen64+len(f.Body))
	for _, x := range []uint64{f.ClusterID, f.From, f.To, f.DataBytes} {
		out = binary.AppendUvarint(out, x)
	}
	return append(out, f.Body...), nil
}

func (frameCodec) Unmarshal(data []byte, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return fmt.Errorf("peer codec: cannot unmarshal into %T", v)
	}
	var fields [4]uint64
	for i := range fields {
		x, n := binary.Uvarint(data)
		if n <= 0 {
			return errors.New("peer codec: truncated frame header")
		}
		fields[i], data = x, data[n:]
	}
	f.ClusterID, f.From, f.To, f.DataBytes = fields[0], fields[1], fields[2], fields[3]
	f.Body = append(f.Body[:0], data...)
	return nil
}
