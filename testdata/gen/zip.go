package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"io/fs"
	"log"
)

// spec is one entry for build.
type spec struct {
	hdr  zip.FileHeader
	data []byte
	raw  bool // data is already compressed and hdr carries CRC and sizes
}

func file(name, data string) spec {
	return spec{hdr: zip.FileHeader{Name: name, Method: zip.Deflate}, data: []byte(data)}
}

func stored(name, data string) spec {
	return spec{hdr: zip.FileHeader{Name: name, Method: zip.Store}, data: []byte(data)}
}

func dir(name string) spec {
	s := spec{hdr: zip.FileHeader{Name: name}}
	s.hdr.SetMode(fs.ModeDir | 0o755)
	return s
}

func symlink(name, target string) spec {
	s := spec{hdr: zip.FileHeader{Name: name, Method: zip.Store}, data: []byte(target)}
	s.hdr.SetMode(fs.ModeSymlink | 0o777)
	return s
}

// encrypted sets the traditional encryption flag; the data stays plain,
// which is enough for a check that must not get as far as reading it.
func encrypted(name, data string) spec {
	return spec{hdr: zip.FileHeader{Name: name, Method: zip.Store, Flags: 0x1}, data: []byte(data)}
}

// raw writes data as is, declaring usize uncompressed bytes with the given CRC.
func raw(name string, method uint16, data []byte, usize uint64, crc uint32) spec {
	return spec{
		hdr: zip.FileHeader{
			Name: name, Method: method, CRC32: crc,
			CompressedSize64: uint64(len(data)), UncompressedSize64: usize,
		},
		data: data,
		raw:  true,
	}
}

// build writes a zip with archive/zip; it does not judge names or flags.
func build(specs ...spec) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, s := range specs {
		hdr := s.hdr
		create := zw.CreateHeader
		if s.raw {
			create = zw.CreateRaw
		}
		w, err := create(&hdr)
		if err != nil {
			log.Fatalf("create %q: %v", hdr.Name, err)
		}
		if _, err := w.Write(s.data); err != nil {
			log.Fatalf("write %q: %v", hdr.Name, err)
		}
	}
	if err := zw.Close(); err != nil {
		log.Fatalf("close zip: %v", err)
	}
	return buf.Bytes()
}

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		log.Fatal(err)
	}
	fw.Write(b)
	fw.Close()
	return buf.Bytes()
}

// overlap hand-writes a zip whose stored entry "index.html" contains the
// local header and data of a second entry "inner.js", so both central
// records are truthful yet share bytes.
func overlap() []byte {
	inner := localHeader("inner.js", []byte("pwned"))
	outer := localHeader("index.html", inner)
	var buf bytes.Buffer
	buf.Write(outer)
	cdStart := buf.Len()
	buf.Write(centralHeader("index.html", inner, 0))
	buf.Write(centralHeader("inner.js", []byte("pwned"), uint32(len(outer)-len(inner))))
	cdSize := buf.Len() - cdStart
	end := make([]byte, 22)
	binary.LittleEndian.PutUint32(end[0:], 0x06054b50)
	binary.LittleEndian.PutUint16(end[8:], 2)
	binary.LittleEndian.PutUint16(end[10:], 2)
	binary.LittleEndian.PutUint32(end[12:], uint32(cdSize))
	binary.LittleEndian.PutUint32(end[16:], uint32(cdStart))
	buf.Write(end)
	return buf.Bytes()
}

// localHeader returns a stored entry's local header followed by its data.
func localHeader(name string, data []byte) []byte {
	h := make([]byte, 30)
	binary.LittleEndian.PutUint32(h[0:], 0x04034b50)
	binary.LittleEndian.PutUint16(h[4:], 20)
	binary.LittleEndian.PutUint32(h[14:], crc32.ChecksumIEEE(data))
	binary.LittleEndian.PutUint32(h[18:], uint32(len(data)))
	binary.LittleEndian.PutUint32(h[22:], uint32(len(data)))
	binary.LittleEndian.PutUint16(h[26:], uint16(len(name)))
	return append(append(h, name...), data...)
}

func centralHeader(name string, data []byte, offset uint32) []byte {
	h := make([]byte, 46)
	binary.LittleEndian.PutUint32(h[0:], 0x02014b50)
	binary.LittleEndian.PutUint16(h[4:], 20)
	binary.LittleEndian.PutUint16(h[6:], 20)
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(data))
	binary.LittleEndian.PutUint32(h[20:], uint32(len(data)))
	binary.LittleEndian.PutUint32(h[24:], uint32(len(data)))
	binary.LittleEndian.PutUint16(h[28:], uint16(len(name)))
	binary.LittleEndian.PutUint32(h[42:], offset)
	return append(h, name...)
}
