package delta

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Patch layout (see docs/patch-format.md):
//
//	"OTAP" version(1) flags(1)
//	oldTreeHash[32] newTreeHash[32]
//	uvarint files  uvarint newSize
//	uvarint metaRawLen  uvarint metaLen  meta[metaLen]    (LZ, dictionary = old path list)
//	raw files, stored as is, in new path order (sizes in meta)
//	repeat per group: uvarint streamLen  stream[streamLen] (LZ, dictionary = the group's references)
//
// meta (before coding): see encodeMeta.

const (
	magic        = "OTAP"
	version      = 1
	maxMetaRaw   = 64 << 20
	maxNewSize   = 1 << 40
	maxFileCount = 1 << 24
)

// Operations on new files.
const (
	opKeep = 0 // same path and content as in the old tree
	opCopy = 1 // content of another old file (by old index)
	opData = 2 // coded in a group stream
	opRaw  = 3 // stored as is (incompressible), in the raw block
)

// ErrFormat is returned (wrapped) for patches that are not valid.
var ErrFormat = errors.New("delta: invalid patch")

// Header is the fixed part of a patch.
type Header struct {
	Version     int
	OldTreeHash string // tree hash the patch applies to
	NewTreeHash string // tree hash of the result
	Files       int    // number of files in the new tree
	NewSize     int64  // total bytes of the new tree's files
}

type group struct {
	refs  []int   // old file indices, in dictionary order
	files []int   // new file indices, in stream order
	sizes []int64 // their sizes
}

type patchMeta struct {
	nOld    int
	deleted []int    // old indices whose paths are not in the new tree
	added   []string // new paths that are not in the old tree, sorted
	ops     []int    // per new file (sorted path order): opKeep, opCopy or opData
	copyOf  []int    // per new file: old index for opCopy, size for opRaw
	groups  []group
}

func putUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func encodeMeta(m *patchMeta) []byte {
	var b []byte
	b = putUvarint(b, uint64(m.nOld))
	b = putUvarint(b, uint64(len(m.deleted)))
	prev := -1
	for _, d := range m.deleted {
		b = putUvarint(b, uint64(d-prev-1))
		prev = d
	}
	b = putUvarint(b, uint64(len(m.added)))
	last := ""
	for _, p := range m.added {
		n := 0
		for n < len(p) && n < len(last) && p[n] == last[n] {
			n++
		}
		b = putUvarint(b, uint64(n))
		b = putUvarint(b, uint64(len(p)-n))
		b = append(b, p[n:]...)
		last = p
	}
	for i, op := range m.ops {
		b = append(b, byte(op))
		if op == opCopy || op == opRaw {
			b = putUvarint(b, uint64(m.copyOf[i]))
		}
	}
	b = putUvarint(b, uint64(len(m.groups)))
	for _, g := range m.groups {
		b = putUvarint(b, uint64(len(g.refs)))
		for _, r := range g.refs {
			b = putUvarint(b, uint64(r))
		}
		b = putUvarint(b, uint64(len(g.files)))
		for k, f := range g.files {
			b = putUvarint(b, uint64(f))
			b = putUvarint(b, uint64(g.sizes[k]))
		}
	}
	return b
}

type metaReader struct {
	b   []byte
	err error
}

func (r *metaReader) uvarint(max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > max {
		r.err = fmt.Errorf("%w: bad metadata", ErrFormat)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *metaReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = fmt.Errorf("%w: truncated metadata", ErrFormat)
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// decodeMeta parses meta for an old tree with the given paths and returns it
// together with the new tree's sorted paths and, per new path, its old index
// (or -1).
func decodeMeta(b []byte, oldPaths []string, nNew int) (*patchMeta, []string, []int, error) {
	r := &metaReader{b: b}
	m := &patchMeta{}
	m.nOld = int(r.uvarint(maxFileCount))
	if r.err == nil && m.nOld != len(oldPaths) {
		return nil, nil, nil, fmt.Errorf("%w: metadata is for %d old files, tree has %d", ErrFormat, m.nOld, len(oldPaths))
	}
	nDel := int(r.uvarint(uint64(len(oldPaths))))
	deleted := make([]bool, len(oldPaths))
	prev := -1
	for i := 0; i < nDel && r.err == nil; i++ {
		d := prev + 1 + int(r.uvarint(uint64(len(oldPaths))))
		if d >= len(oldPaths) {
			r.err = fmt.Errorf("%w: bad deleted index", ErrFormat)
			break
		}
		deleted[d] = true
		m.deleted = append(m.deleted, d)
		prev = d
	}
	nAdd := int(r.uvarint(maxFileCount))
	last := ""
	for i := 0; i < nAdd && r.err == nil; i++ {
		n := int(r.uvarint(uint64(len(last))))
		l := int(r.uvarint(4096))
		s := r.bytes(l)
		if r.err != nil {
			break
		}
		p := last[:n] + string(s)
		if !validPath(p) || (i > 0 && p <= last) {
			r.err = fmt.Errorf("%w: bad path %q", ErrFormat, p)
			break
		}
		m.added = append(m.added, p)
		last = p
	}
	if r.err != nil {
		return nil, nil, nil, r.err
	}
	// merge surviving old paths and added paths
	newPaths := make([]string, 0, len(oldPaths)-nDel+nAdd)
	oldOf := make([]int, 0, cap(newPaths))
	i, j := 0, 0
	for i < len(oldPaths) || j < len(m.added) {
		if i < len(oldPaths) && deleted[i] {
			i++
			continue
		}
		if j >= len(m.added) || (i < len(oldPaths) && oldPaths[i] < m.added[j]) {
			newPaths = append(newPaths, oldPaths[i])
			oldOf = append(oldOf, i)
			i++
			continue
		}
		if i < len(oldPaths) && oldPaths[i] == m.added[j] {
			return nil, nil, nil, fmt.Errorf("%w: added path %q exists in the old tree", ErrFormat, m.added[j])
		}
		newPaths = append(newPaths, m.added[j])
		oldOf = append(oldOf, -1)
		j++
	}
	if len(newPaths) != nNew {
		return nil, nil, nil, fmt.Errorf("%w: metadata lists %d files, header says %d", ErrFormat, len(newPaths), nNew)
	}
	if err := checkNoFileDirClash(newPaths); err != nil {
		return nil, nil, nil, err
	}
	m.ops = make([]int, nNew)
	m.copyOf = make([]int, nNew)
	for k := 0; k < nNew && r.err == nil; k++ {
		op := r.bytes(1)
		if r.err != nil {
			break
		}
		m.ops[k] = int(op[0])
		switch op[0] {
		case opKeep:
			if oldOf[k] < 0 {
				r.err = fmt.Errorf("%w: keep for a new path", ErrFormat)
			}
		case opCopy:
			m.copyOf[k] = int(r.uvarint(uint64(len(oldPaths) - 1)))
		case opRaw:
			m.copyOf[k] = int(r.uvarint(maxNewSize))
		case opData:
		default:
			r.err = fmt.Errorf("%w: bad file operation %d", ErrFormat, op[0])
		}
	}
	nGroups := int(r.uvarint(uint64(nNew)))
	seen := make([]bool, nNew)
	for g := 0; g < nGroups && r.err == nil; g++ {
		var gr group
		nRefs := int(r.uvarint(uint64(len(oldPaths))))
		for k := 0; k < nRefs && r.err == nil; k++ {
			gr.refs = append(gr.refs, int(r.uvarint(uint64(len(oldPaths)-1))))
		}
		nFiles := int(r.uvarint(uint64(nNew)))
		for k := 0; k < nFiles && r.err == nil; k++ {
			f := int(r.uvarint(uint64(nNew - 1)))
			sz := int64(r.uvarint(maxNewSize))
			if r.err != nil {
				break
			}
			if m.ops[f] != opData || seen[f] {
				r.err = fmt.Errorf("%w: bad group file", ErrFormat)
				break
			}
			seen[f] = true
			gr.files = append(gr.files, f)
			gr.sizes = append(gr.sizes, sz)
		}
		m.groups = append(m.groups, gr)
	}
	if r.err != nil {
		return nil, nil, nil, r.err
	}
	for k, op := range m.ops {
		if op == opData && !seen[k] {
			return nil, nil, nil, fmt.Errorf("%w: file %q has no data", ErrFormat, newPaths[k])
		}
	}
	if len(r.b) != 0 {
		return nil, nil, nil, fmt.Errorf("%w: trailing metadata", ErrFormat)
	}
	return m, newPaths, oldOf, nil
}

// checkNoFileDirClash rejects trees where a file path is also a folder.
func checkNoFileDirClash(sorted []string) error {
	for i := 0; i+1 < len(sorted); i++ {
		// a file "a" and a file "a/b" sort close: "a" < "a-x" < "a/b"
		p := sorted[i] + "/"
		j := sort.SearchStrings(sorted[i+1:], p)
		if j < len(sorted)-i-1 && strings.HasPrefix(sorted[i+1+j], p) {
			return fmt.Errorf("%w: %q is both a file and a folder", ErrFormat, sorted[i])
		}
	}
	return nil
}

func pathDict(paths []string) []byte {
	n := 0
	for _, p := range paths {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	for _, p := range paths {
		b = append(b, p...)
		b = append(b, '\n')
	}
	return b
}

func writeHeader(w io.Writer, h Header, lc uint) ([]byte, error) {
	b := []byte(magic)
	b = append(b, version, byte(lc))
	for _, s := range []string{h.OldTreeHash, h.NewTreeHash} {
		raw, err := hex.DecodeString(s)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("delta: bad tree hash %q", s)
		}
		b = append(b, raw...)
	}
	b = putUvarint(b, uint64(h.Files))
	b = putUvarint(b, uint64(h.NewSize))
	_, err := w.Write(b)
	return b, err
}

// ReadHeader reads the fixed header of a patch.
func ReadHeader(r io.Reader) (Header, error) {
	h, _, err := readHeader(bufio.NewReader(r))
	return h, err
}

func readHeader(br *bufio.Reader) (Header, uint, error) {
	var fixed [4 + 2 + 64]byte
	if _, err := io.ReadFull(br, fixed[:]); err != nil {
		return Header{}, 0, fmt.Errorf("%w: short header", ErrFormat)
	}
	if string(fixed[:4]) != magic {
		return Header{}, 0, fmt.Errorf("%w: not an OTA patch (bad magic)", ErrFormat)
	}
	if fixed[4] != version {
		return Header{}, 0, fmt.Errorf("%w: unsupported patch version %d (this build reads %d)", ErrFormat, fixed[4], version)
	}
	lc := uint(fixed[5])
	if lc > 8 {
		return Header{}, 0, fmt.Errorf("%w: bad coder parameters", ErrFormat)
	}
	h := Header{
		Version:     int(fixed[4]),
		OldTreeHash: hex.EncodeToString(fixed[6:38]),
		NewTreeHash: hex.EncodeToString(fixed[38:70]),
	}
	files, err := binary.ReadUvarint(br)
	if err != nil || files > maxFileCount {
		return Header{}, 0, fmt.Errorf("%w: bad file count", ErrFormat)
	}
	size, err := binary.ReadUvarint(br)
	if err != nil || size > maxNewSize {
		return Header{}, 0, fmt.Errorf("%w: bad size", ErrFormat)
	}
	h.Files = int(files)
	h.NewSize = int64(size)
	return h, lc, nil
}

// readBlock reads a uvarint length and that many bytes.
func readBlock(br *bufio.Reader, max uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil || n > max {
		return nil, fmt.Errorf("%w: bad block length", ErrFormat)
	}
	b := make([]byte, 0, min(n, 1<<20))
	for uint64(len(b)) < n {
		k := min(n-uint64(len(b)), 1<<20)
		start := len(b)
		b = append(b, make([]byte, k)...)
		if _, err := io.ReadFull(br, b[start:]); err != nil {
			return nil, fmt.Errorf("%w: truncated patch", ErrFormat)
		}
	}
	return b, nil
}
