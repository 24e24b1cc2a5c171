package bundle

import (
	"archive/zip"
	"cmp"
	"encoding/binary"
	"io"
	"slices"
)

// Zip record signatures and fixed lengths (APPNOTE 4.3).
const (
	localSig    = 0x04034b50
	centralSig  = 0x02014b50
	eocdSig     = 0x06054b50
	eocd64Sig   = 0x06064b50
	loc64Sig    = 0x07064b50
	localLen    = 30
	centralLen  = 46
	eocdLen     = 22
	loc64Len    = 20
	eocd64Fixed = 12 // signature and size field, not counted by the size field
	zip64Tag    = 0x0001
	max32       = 0xffffffff
)

// checkLayout verifies what archive/zip takes on trust. Unzippers that
// stream local headers (Java's ZipInputStream on Android) never read the
// central directory, so every central record must point at a local header
// with the same name, and nothing may hide before or after the archive.
// Entries must not share bytes: overlapping entries are how a tiny archive
// inflates to gigabytes.
func checkLayout(r io.ReaderAt, size int64, zr *zip.Reader) *Error {
	cdStart, offsets, err := centralOffsets(r, size, zr)
	if err != nil {
		return err
	}
	type span struct {
		start, end int64
		name       string
	}
	spans := make([]span, 0, len(zr.File))
	var hdr [localLen]byte
	for i, f := range zr.File {
		off := offsets[i]
		if off < 0 || off > cdStart-localLen {
			return newErr(CodeZipInvalid, "%q: local header offset %d outside the archive", f.Name, off)
		}
		if err := readAt(r, hdr[:], off); err != nil {
			return err
		}
		if binary.LittleEndian.Uint32(hdr[0:]) != localSig {
			return newErr(CodeZipInvalid, "%q: no local header at offset %d", f.Name, off)
		}
		if err := sameAsCentral(hdr[:], f); err != nil {
			return err
		}
		nameLen := int64(binary.LittleEndian.Uint16(hdr[26:]))
		extraLen := int64(binary.LittleEndian.Uint16(hdr[28:]))
		name := make([]byte, nameLen)
		if err := readAt(r, name, off+localLen); err != nil {
			return err
		}
		if string(name) != f.Name {
			return newErr(CodeZipInvalid, "local header names %q, central directory %q", name, f.Name)
		}
		dataOff := off + localLen + nameLen + extraLen
		if got, err := f.DataOffset(); err != nil || got != dataOff {
			return newErr(CodeZipInvalid, "%q: archive has a prefix or an inconsistent offset", f.Name)
		}
		end := dataOff + int64(f.CompressedSize64)
		if end < dataOff || end > cdStart {
			return newErr(CodeZipInvalid, "%q: data runs past the central directory", f.Name)
		}
		spans = append(spans, span{off, end, f.Name})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return newErr(CodeZipInvalid, "entries %q and %q overlap", spans[i-1].name, spans[i].name)
		}
	}
	return nil
}

// sameAsCentral checks that a local header describes its entry like the
// central record does, since streaming unzippers decode by the local one.
func sameAsCentral(hdr []byte, f *zip.File) *Error {
	flags := binary.LittleEndian.Uint16(hdr[6:])
	if flags&(flagEncrypted|flagStrongEncryption) != 0 {
		return newErr(CodeEncryptedEntry, "%q is encrypted (local header)", f.Name)
	}
	if binary.LittleEndian.Uint16(hdr[8:]) != f.Method {
		return newErr(CodeZipInvalid, "%q: local and central compression methods differ", f.Name)
	}
	if flags&flagDataDescriptor != 0 {
		return nil // CRC and sizes follow the data; archive/zip checks them
	}
	crc := binary.LittleEndian.Uint32(hdr[14:])
	csize := binary.LittleEndian.Uint32(hdr[18:])
	usize := binary.LittleEndian.Uint32(hdr[22:])
	if crc != f.CRC32 ||
		(csize != max32 && uint64(csize) != f.CompressedSize64) ||
		(usize != max32 && uint64(usize) != f.UncompressedSize64) {
		return newErr(CodeZipInvalid, "%q: local header sizes or CRC differ from the central directory", f.Name)
	}
	return nil
}

// centralOffsets locates the central directory directly before the end
// records (no trailing data allowed) and returns its start and the local
// header offset of every record, in zr.File order.
func centralOffsets(r io.ReaderAt, size int64, zr *zip.Reader) (int64, []int64, *Error) {
	eocdOff := size - eocdLen - int64(len(zr.Comment))
	if eocdOff < 0 {
		return 0, nil, newErr(CodeZipInvalid, "archive shorter than its end record")
	}
	var end [eocdLen]byte
	if err := readAt(r, end[:], eocdOff); err != nil {
		return 0, nil, err
	}
	if binary.LittleEndian.Uint32(end[0:]) != eocdSig ||
		int(binary.LittleEndian.Uint16(end[20:])) != len(zr.Comment) {
		return 0, nil, newErr(CodeZipInvalid, "data after the end of the archive")
	}
	if binary.LittleEndian.Uint16(end[4:]) != 0 || binary.LittleEndian.Uint16(end[6:]) != 0 {
		return 0, nil, newErr(CodeZipInvalid, "multi-disk archives are not supported")
	}
	cdEnd, err := zip64End(r, eocdOff)
	if err != nil {
		return 0, nil, err
	}
	var cdSize int64
	for _, f := range zr.File {
		cdSize += centralLen + int64(len(f.Name)+len(f.Extra)+len(f.Comment))
	}
	cdStart := cdEnd - cdSize
	if cdStart < 0 {
		return 0, nil, newErr(CodeZipInvalid, "central directory larger than the archive")
	}
	cd := make([]byte, cdSize)
	if err := readAt(r, cd, cdStart); err != nil {
		return 0, nil, err
	}
	offsets := make([]int64, len(zr.File))
	for i, f := range zr.File {
		rec := cd[:centralLen]
		n, e, c := len(f.Name), len(f.Extra), len(f.Comment)
		if binary.LittleEndian.Uint32(rec[0:]) != centralSig ||
			int(binary.LittleEndian.Uint16(rec[28:])) != n ||
			int(binary.LittleEndian.Uint16(rec[30:])) != e ||
			int(binary.LittleEndian.Uint16(rec[32:])) != c ||
			string(cd[centralLen:centralLen+n]) != f.Name {
			return 0, nil, newErr(CodeZipInvalid, "central directory is not contiguous with its end record")
		}
		off := uint64(binary.LittleEndian.Uint32(rec[42:]))
		if off == max32 {
			var ok bool
			off, ok = zip64Offset(f.Extra,
				binary.LittleEndian.Uint32(rec[24:]) == max32,
				binary.LittleEndian.Uint32(rec[20:]) == max32)
			if !ok {
				return 0, nil, newErr(CodeZipInvalid, "%q: missing zip64 offset", f.Name)
			}
		}
		if off > uint64(size) {
			return 0, nil, newErr(CodeZipInvalid, "%q: local header offset outside the archive", f.Name)
		}
		offsets[i] = int64(off)
		cd = cd[centralLen+n+e+c:]
	}
	return cdStart, offsets, nil
}

// zip64End returns where the central directory ends: at the zip64 end
// record when a zip64 locator precedes the end record, else at the end
// record itself.
func zip64End(r io.ReaderAt, eocdOff int64) (int64, *Error) {
	if eocdOff < loc64Len {
		return eocdOff, nil
	}
	var loc [loc64Len]byte
	if err := readAt(r, loc[:], eocdOff-loc64Len); err != nil {
		return 0, err
	}
	if binary.LittleEndian.Uint32(loc[0:]) != loc64Sig {
		return eocdOff, nil
	}
	recOff := binary.LittleEndian.Uint64(loc[8:])
	if recOff > uint64(eocdOff-loc64Len-eocd64Fixed) {
		return 0, newErr(CodeZipInvalid, "zip64 end record outside the archive")
	}
	var rec [eocd64Fixed]byte
	if err := readAt(r, rec[:], int64(recOff)); err != nil {
		return 0, err
	}
	if binary.LittleEndian.Uint32(rec[0:]) != eocd64Sig ||
		recOff+eocd64Fixed+binary.LittleEndian.Uint64(rec[4:]) != uint64(eocdOff-loc64Len) {
		return 0, newErr(CodeZipInvalid, "zip64 end record is not followed by its locator")
	}
	return int64(recOff), nil
}

// zip64Offset reads the local header offset from a zip64 extra field, whose
// values appear only for the header fields that overflowed, in this order.
func zip64Offset(extra []byte, usizeMax, csizeMax bool) (uint64, bool) {
	for len(extra) >= 4 {
		tag := binary.LittleEndian.Uint16(extra[0:])
		n := int(binary.LittleEndian.Uint16(extra[2:]))
		extra = extra[4:]
		if n > len(extra) {
			return 0, false
		}
		field := extra[:n]
		extra = extra[n:]
		if tag != zip64Tag {
			continue
		}
		skip := 0
		if usizeMax {
			skip += 8
		}
		if csizeMax {
			skip += 8
		}
		if len(field) < skip+8 {
			return 0, false
		}
		return binary.LittleEndian.Uint64(field[skip:]), true
	}
	return 0, false
}

func readAt(r io.ReaderAt, p []byte, off int64) *Error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil // io.ReaderAt may report io.EOF with a full read
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return wrapErr(CodeZipInvalid, err, "read %d bytes at offset %d", len(p), off)
}
