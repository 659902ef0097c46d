package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"google.golang.org/protobuf/proto"
)

// The record frame; doc.go describes it for readers of the files.
const (
	recordHeaderBytes = 24
	// recordAlignBytes: every record starts at a multiple of it, so that the
	// search for records after a bad one (laterBatch) only looks there.
	recordAlignBytes = 8
	// MaxRecordBytes bounds the data of one record, so that a corrupt length
	// cannot make Open allocate the moon, and Save refuses larger entries.
	MaxRecordBytes = 64 << 20
)

type recordType uint8

const (
	recordSegment   recordType = 1 // segment header, first record of every segment
	recordMetadata  recordType = 2 // the caller's metadata, second record of every segment
	recordHardState recordType = 3 // raftpb.HardState
	recordEntry     recordType = 4 // raftpb.Entry
	recordSnapshot  recordType = 5 // a SnapshotMark (SaveSnapshot)
)

func (t recordType) known() bool { return t >= recordSegment && t <= recordSnapshot }

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// encoder frames the records of one batch: the bytes one Write puts at
// batchOff in a segment.
type encoder struct {
	buf      []byte
	batchOff int64
}

// encodeBufferKeepBytes bounds the buffer an encoder keeps between batches,
// so that one huge batch does not pin its memory for the WAL's lifetime.
const encodeBufferKeepBytes = 4 << 20

func (e *encoder) reset(batchOff int64) {
	if batchOff%recordAlignBytes != 0 {
		panic(fmt.Sprintf("wal: batch at unaligned offset %d", batchOff))
	}
	if cap(e.buf) > encodeBufferKeepBytes {
		e.buf = nil
	}
	e.buf = e.buf[:0]
	e.batchOff = batchOff
}

// add appends a record holding data.
func (e *encoder) add(typ recordType, data []byte) {
	start := len(e.buf)
	e.buf = append(e.buf, make([]byte, recordHeaderBytes)...)
	e.buf = append(e.buf, data...)
	e.finish(start, typ)
}

// addProto appends a record holding m's encoding, marshalled in place.
func (e *encoder) addProto(typ recordType, m proto.Message) error {
	start := len(e.buf)
	e.buf = append(e.buf, make([]byte, recordHeaderBytes)...)
	buf, err := proto.MarshalOptions{}.MarshalAppend(e.buf, m)
	if err != nil {
		e.buf = e.buf[:start]
		return fmt.Errorf("wal: marshal %T: %w", m, err)
	}
	e.buf = buf
	if n := len(e.buf) - start - recordHeaderBytes; n > MaxRecordBytes {
		e.buf = e.buf[:start]
		return fmt.Errorf("%w: %T of %d bytes, limit %d", ErrRecordTooLarge, m, n, MaxRecordBytes)
	}
	e.finish(start, typ)
	return nil
}

// finish pads the record that starts at start and fills in its header.
func (e *encoder) finish(start int, typ recordType) {
	n := len(e.buf) - start - recordHeaderBytes
	if n > MaxRecordBytes {
		panic(fmt.Sprintf("wal: record of %d bytes over the limit", n))
	}
	for len(e.buf)%recordAlignBytes != 0 {
		e.buf = append(e.buf, 0)
	}
	h := e.buf[start : start+recordHeaderBytes]
	data := e.buf[start+recordHeaderBytes : start+recordHeaderBytes+n]
	binary.LittleEndian.PutUint32(h[0:], uint32(n))
	h[4] = byte(typ)
	binary.LittleEndian.PutUint64(h[8:], uint64(e.batchOff))
	binary.LittleEndian.PutUint32(h[16:], crc32.Checksum(data, crcTable))
	binary.LittleEndian.PutUint32(h[20:], crc32.Checksum(h[:20], crcTable))
}

// record is one decoded record of a segment. data aliases the segment's
// buffer.
type record struct {
	typ      recordType
	data     []byte
	off      int64 // where the header starts
	end      int64 // where the next record starts (after padding)
	batchOff int64 // where the write that held this record started
}

// fault is what is wrong with a record that fails to decode.
type fault int

const (
	faultNone        fault = iota
	faultShortHeader       // the file ends inside the header
	faultHeader            // the header does not check out: its length cannot be trusted
	faultShortData         // the header is good, but the file ends inside the data
	faultData              // the header is good, the data or padding is not
)

// readRecord decodes the record at off, which must be aligned. On a fault,
// reason says what is wrong; rec.end is still set when the header is good
// (faultShortData, faultData), so a caller can step over the bad record.
func readRecord(buf []byte, off int64) (rec record, f fault, reason string) {
	if int64(len(buf))-off < recordHeaderBytes {
		return rec, faultShortHeader, fmt.Sprintf("file ends %d bytes into a record header", int64(len(buf))-off)
	}
	h := buf[off : off+recordHeaderBytes]
	n := int64(binary.LittleEndian.Uint32(h[0:]))
	rec = record{
		typ:      recordType(h[4]),
		off:      off,
		batchOff: int64(binary.LittleEndian.Uint64(h[8:])),
	}
	switch {
	case crc32.Checksum(h[:20], crcTable) != binary.LittleEndian.Uint32(h[20:]):
		return rec, faultHeader, "record header checksum mismatch"
	case h[5] != 0 || h[6] != 0 || h[7] != 0:
		return rec, faultHeader, "reserved header bytes are not zero"
	case !rec.typ.known():
		return rec, faultHeader, fmt.Sprintf("unknown record type %d", rec.typ)
	case n > MaxRecordBytes:
		return rec, faultHeader, fmt.Sprintf("record length %d over the limit %d", n, MaxRecordBytes)
	case rec.batchOff > off || rec.batchOff%recordAlignBytes != 0 || rec.batchOff < 0:
		return rec, faultHeader, fmt.Sprintf("record claims a write that started at offset %d", rec.batchOff)
	}
	dataOff := off + recordHeaderBytes
	rec.end = alignUp(dataOff + n)
	if rec.end > int64(len(buf)) {
		return rec, faultShortData, fmt.Sprintf("file ends inside a record of %d bytes", n)
	}
	rec.data = buf[dataOff : dataOff+n]
	if crc32.Checksum(rec.data, crcTable) != binary.LittleEndian.Uint32(h[16:]) {
		return rec, faultData, "record data checksum mismatch"
	}
	for _, b := range buf[dataOff+n : rec.end] {
		if b != 0 {
			return rec, faultData, "record padding is not zero"
		}
	}
	return rec, faultNone, ""
}

func alignUp(n int64) int64 {
	return (n + recordAlignBytes - 1) / recordAlignBytes * recordAlignBytes
}

// segmentScan is what decoding one segment found.
type segmentScan struct {
	recs []record
	// end is where the valid records end. If torn, the bytes after it are a
	// torn write that Open cuts off.
	end  int64
	torn bool
}

// scanSegment decodes the records of one segment (named name, for errors).
// prologueBytes is the size of the segment's prologue as its header
// records it (0 until the header is decoded).
//
// A bad record is a torn write, and so ends the segment, only if all of
// these hold: the segment is the last one; the record lies after the
// prologue (which is synced before the segment gets its name, so it is never
// torn); and no record after it belongs to a later write. The last test is
// what separates the two: each write is synced before the next one starts,
// so a record written after the bad spot proves the bad spot was once synced
// and has since gone bad. Records of the same write after the bad spot are
// consistent with a torn write (a disk can persist a write's sectors in any
// order) and are cut off with it.
func scanSegment(name string, buf []byte, last bool) (segmentScan, error) {
	var s segmentScan
	var prologueBytes int64
	for off := int64(0); off < int64(len(buf)); {
		rec, f, reason := readRecord(buf, off)
		if f == faultNone {
			if off == 0 {
				hdr, err := decodeSegmentHeader(rec)
				if err != nil {
					return s, &CorruptError{File: name, Offset: 0, Reason: err.Error()}
				}
				prologueBytes = hdr.prologueBytes
			}
			s.recs = append(s.recs, rec)
			off = rec.end
			continue
		}
		switch {
		case !last:
			return s, &CorruptError{File: name, Offset: off, Reason: reason + " in a segment that is not the last"}
		case off < prologueBytes || off == 0:
			return s, &CorruptError{File: name, Offset: off, Reason: reason + " in the segment's prologue, which was synced before the segment was named"}
		}
		from := off + recordAlignBytes // the header cannot be trusted: look everywhere after it
		if f == faultData {
			from = rec.end // the header is good: step over the bad record's data
		}
		if f != faultShortData && f != faultShortHeader {
			if later, ok := laterBatch(buf, from, off); ok {
				return s, &CorruptError{File: name, Offset: off, Reason: fmt.Sprintf(
					"%s, followed at offset %d by a record written after it (so it was synced once)", reason, later)}
			}
		}
		s.end, s.torn = off, true
		return s, nil
	}
	if len(s.recs) == 0 {
		return s, &CorruptError{File: name, Offset: 0, Reason: "empty segment: no segment header"}
	}
	if int64(len(buf)) < prologueBytes {
		return s, &CorruptError{File: name, Offset: int64(len(buf)), Reason: fmt.Sprintf(
			"segment ends inside its prologue of %d bytes", prologueBytes)}
	}
	s.end = int64(len(buf))
	return s, nil
}

// laterBatch looks for a valid record at or after from whose write started
// after bad, and returns its offset.
func laterBatch(buf []byte, from, bad int64) (int64, bool) {
	for off := alignUp(from); off+recordHeaderBytes <= int64(len(buf)); {
		rec, f, _ := readRecord(buf, off)
		if f != faultNone {
			off += recordAlignBytes
			continue
		}
		if rec.batchOff > bad {
			return off, true
		}
		off = rec.end // a record of the torn write: skip what it holds
	}
	return 0, false
}
