package mvcc

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// The stored value of a revision is a marshalled mvccpb.KeyValue, encoded by
// hand with the wire format (fields in number order, zero values omitted:
// the bytes proto.Marshal and etcd's gogo encoder produce), because the
// key-value hash covers these bytes and the reflection-based encoder costs
// more than the rest of a put.

func appendKV(dst []byte, kv *mvccpb.KeyValue) []byte {
	if len(kv.Key) > 0 {
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendBytes(dst, kv.Key)
	}
	dst = appendVarintField(dst, 2, kv.CreateRevision)
	dst = appendVarintField(dst, 3, kv.ModRevision)
	dst = appendVarintField(dst, 4, kv.Version)
	if len(kv.Value) > 0 {
		dst = protowire.AppendTag(dst, 5, protowire.BytesType)
		dst = protowire.AppendBytes(dst, kv.Value)
	}
	return appendVarintField(dst, 6, kv.Lease)
}

func appendVarintField(dst []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.VarintType)
	return protowire.AppendVarint(dst, uint64(v))
}

// marshalledKVSize bounds appendKV's output, to allocate once.
func marshalledKVSize(key, value []byte) int {
	const tagsAndVarints = 6 * (1 + binary.MaxVarintLen64)
	return tagsAndVarints + 2*protowire.SizeVarint(uint64(len(key)+len(value))) + len(key) + len(value)
}

// decodeKV parses a stored KeyValue. The result owns its memory (key and
// value are copied into one allocation), since backends may reuse theirs;
// without the value when keysOnly.
func decodeKV(b []byte, keysOnly bool) (*mvccpb.KeyValue, error) {
	kv := &mvccpb.KeyValue{}
	var key, value []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("mvcc: decode KeyValue: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 5) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, fmt.Errorf("mvcc: decode KeyValue field %d: %w", num, protowire.ParseError(n))
			}
			if num == 1 {
				key = v
			} else {
				value = v
			}
			b = b[n:]
		case num >= 2 && num <= 6 && num != 5 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("mvcc: decode KeyValue field %d: %w", num, protowire.ParseError(n))
			}
			switch num {
			case 2:
				kv.CreateRevision = int64(v)
			case 3:
				kv.ModRevision = int64(v)
			case 4:
				kv.Version = int64(v)
			case 6:
				kv.Lease = int64(v)
			}
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, fmt.Errorf("mvcc: decode KeyValue field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	if keysOnly {
		value = nil
	}
	if len(key)+len(value) > 0 {
		buf := make([]byte, len(key)+len(value))
		copy(buf, key)
		copy(buf[len(key):], value)
		if len(key) > 0 {
			kv.Key = buf[:len(key):len(key)]
		}
		if len(value) > 0 {
			kv.Value = buf[len(key):]
		}
	}
	return kv, nil
}
