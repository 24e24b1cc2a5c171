// Package fluxpatch implements the Flux updater's byte-exact patch format.
//
// A patch is a 9-byte header followed by a gzip stream (RFC 1952):
//
//	offset 0  uint32 big-endian  oldLen  length of the chunk the client holds
//	offset 4  uint32 big-endian  newLen
//	offset 8  uint8              mode    0 = XOR, anything else = full replacement
//	offset 9  ...                gzip stream
//
// The writer picks XOR iff oldLen > 0 && newLen > 0 && min/max > 0.5 (strictly,
// as a real division); the XOR payload is d[i] = old[i] XOR new[i] for
// i < max(oldLen, newLen), a missing byte counting as 0x00. Otherwise the payload
// is the new content. There is no magic, no version and no output checksum: the
// only base check is oldLen == len(old).
package fluxpatch

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// HeaderSize is the length of the fixed header in front of the gzip stream.
const HeaderSize = 9

// Patch modes.
const (
	ModeXOR  = 0
	ModeFull = 1
)

var (
	// ErrShortPatch is returned by Apply for a patch shorter than the header.
	ErrShortPatch = errors.New("fluxpatch: patch shorter than its 9-byte header")
	// ErrOldLength is returned by Apply when the old chunk's length differs from the patch's oldLen.
	ErrOldLength = errors.New("fluxpatch: old chunk length does not match the patch")
)

// maxOutput bounds what Apply will produce from a patch (newLen is a uint32 anyway).
const maxOutput = math.MaxUint32

// Mode returns the mode the writer uses for chunks of these lengths.
func Mode(oldLen, newLen int) byte {
	if oldLen > 0 && newLen > 0 {
		lo, hi := oldLen, newLen
		if lo > hi {
			lo, hi = hi, lo
		}
		if float64(lo)/float64(hi) > 0.5 {
			return ModeXOR
		}
	}
	return ModeFull
}

// Create returns the patch that turns old into new.
func Create(old, new []byte) ([]byte, error) {
	if uint64(len(old)) > math.MaxUint32 || uint64(len(new)) > math.MaxUint32 {
		return nil, errors.New("fluxpatch: chunk larger than 4 GiB")
	}
	var buf bytes.Buffer
	var hdr [HeaderSize]byte
	binary.BigEndian.PutUint32(hdr[0:4], uint32(len(old)))
	binary.BigEndian.PutUint32(hdr[4:8], uint32(len(new)))
	mode := Mode(len(old), len(new))
	hdr[8] = mode
	buf.Write(hdr[:])
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if mode == ModeXOR {
		n := max(len(old), len(new))
		d := make([]byte, n)
		copy(d, old)
		for i, b := range new {
			d[i] ^= b
		}
		_, err = zw.Write(d)
	} else {
		_, err = zw.Write(new)
	}
	if err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Apply applies patch to old and returns the new chunk.
func Apply(old, patch []byte) ([]byte, error) {
	if len(patch) < HeaderSize {
		return nil, ErrShortPatch
	}
	oldLen := binary.BigEndian.Uint32(patch[0:4])
	newLen := binary.BigEndian.Uint32(patch[4:8])
	mode := patch[8]
	if uint64(oldLen) != uint64(len(old)) {
		return nil, fmt.Errorf("%w: patch wants %d bytes, have %d", ErrOldLength, oldLen, len(old))
	}
	zr, err := gzip.NewReader(bytes.NewReader(patch[HeaderSize:]))
	if err != nil {
		return nil, fmt.Errorf("fluxpatch: payload: %w", err)
	}
	// Never read more than the output can use (plus one byte to tell full-mode
	// payloads that are too long), so a hostile gzip bomb cannot exhaust memory.
	limit := int64(newLen)
	if mode == ModeXOR {
		limit = int64(max(uint64(newLen), uint64(oldLen)))
	}
	d, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fluxpatch: payload: %w", err)
	}
	if mode != ModeXOR {
		if uint64(len(d)) != uint64(newLen) {
			return nil, fmt.Errorf("fluxpatch: payload is %d bytes, header says %d", len(d), newLen)
		}
		return d, nil
	}
	out := make([]byte, newLen)
	copy(out, old)
	for i := range out {
		if i < len(d) {
			out[i] ^= d[i]
		}
	}
	return out, nil
}
