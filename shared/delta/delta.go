// Package delta creates and applies patches between two bundle trees.
//
// A patch turns an old tree (a folder, or any fs.FS such as a zip.Reader) into a
// new tree. Files whose content exists in the old tree cost nothing (kept, or
// copied from their old path when renamed); every other file is coded with an
// LZ77 + range coder against references chosen from the old tree (same path,
// renamed hashed chunk found by content, similar name), all changed files of a
// group in one stream so that they also share matches with each other. The
// format is described in docs/patch-format.md.
package delta

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Options tunes Create. The zero value is the default.
type Options struct {
	// Level trades creation time for patch size: 0 is the default (same as 2),
	// 1 is faster, 3 searches harder.
	Level int
	// GroupLimit bounds the references plus new data of one coded group in bytes
	// (default 32 MiB). Apply holds one group in memory at a time, Create about
	// ten times that.
	GroupLimit int64
}

// Stats describes a created patch.
type Stats struct {
	Files       int   // files in the new tree
	Kept        int   // unchanged files (same path, same content)
	Copied      int   // files whose content exists in the old tree under another path
	Coded       int   // files coded in the data streams
	Raw         int   // incompressible files stored as they are
	RawSize     int64 // their bytes
	Deleted     int   // old paths that are gone
	Groups      int   // coded groups
	NewSize     int64 // bytes of the new tree
	CodedSize   int64 // bytes of the coded files
	RefSize     int64 // bytes of references used as dictionaries
	PatchSize   int64 // bytes written
	OldTreeHash string
	NewTreeHash string
	Duration    time.Duration
}

const defaultGroupLimit = 32 << 20

func (o Options) params() encParams {
	p := defaultEncParams
	switch o.Level {
	case 1:
		p.depth4, p.depth8, p.nice, p.lazy = 8, 4, 32, true
	case 3:
		p.depth4, p.depth8, p.nice = 256, 64, 273
	}
	return p
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Create writes a patch that transforms the old tree into the new tree.
func Create(ctx context.Context, oldTree, newTree fs.FS, w io.Writer, opt Options) (Stats, error) {
	start := time.Now()
	var st Stats
	par := opt.params()
	limit := opt.GroupLimit
	if limit <= 0 {
		limit = defaultGroupLimit
	}

	// Old tree: hashes and content fingerprints.
	idx := &fpIndex{}
	oldFiles, err := walkTree(oldTree, func(i int, e *fileEntry, data []byte) error {
		idx.add(i, data)
		return ctx.Err()
	})
	if err != nil {
		return st, fmt.Errorf("old tree: %w", err)
	}
	if len(oldFiles) >= 1<<fpIdxBits {
		return st, fmt.Errorf("old tree: too many files (%d)", len(oldFiles))
	}
	idx.finish()
	oldIndex := make(map[string]int, len(oldFiles))
	bySum := make(map[[32]byte]int, len(oldFiles))
	for i, f := range oldFiles {
		oldIndex[f.path] = i
		if _, ok := bySum[f.sum]; !ok {
			bySum[f.sum] = i
		}
	}

	// New tree: classify every file.
	type coded struct {
		file int
		data []byte
		refs []int
	}
	var codedFiles []coded
	var rawFiles [][]byte
	meta := &patchMeta{nOld: len(oldFiles)}
	newFiles, err := walkTree(newTree, func(i int, e *fileEntry, data []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if j, ok := oldIndex[e.path]; ok && oldFiles[j].sum == e.sum {
			meta.ops = append(meta.ops, opKeep)
			meta.copyOf = append(meta.copyOf, 0)
			return nil
		}
		if j, ok := bySum[e.sum]; ok {
			meta.ops = append(meta.ops, opCopy)
			meta.copyOf = append(meta.copyOf, j)
			return nil
		}
		refs := chooseRefs(e.path, data, oldFiles, oldIndex, idx)
		if incompressible(data) {
			// compressed media (fonts, images): store unless its references help
			dict, err := loadRefs(oldTree, oldFiles, refs, nil)
			if err != nil {
				return err
			}
			if len(lzCompress(par, dict, data)) >= len(data) {
				meta.ops = append(meta.ops, opRaw)
				meta.copyOf = append(meta.copyOf, len(data))
				rawFiles = append(rawFiles, append([]byte(nil), data...))
				return nil
			}
		}
		meta.ops = append(meta.ops, opData)
		meta.copyOf = append(meta.copyOf, 0)
		codedFiles = append(codedFiles, coded{file: i, data: append([]byte(nil), data...), refs: refs})
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("new tree: %w", err)
	}
	newIndex := make(map[string]int, len(newFiles))
	for i, f := range newFiles {
		newIndex[f.path] = i
		st.NewSize += f.size
		switch meta.ops[i] {
		case opKeep:
			st.Kept++
		case opCopy:
			st.Copied++
		}
	}
	for i, f := range oldFiles {
		if _, ok := newIndex[f.path]; !ok {
			meta.deleted = append(meta.deleted, i)
		}
	}
	for _, f := range newFiles {
		if _, ok := oldIndex[f.path]; !ok {
			meta.added = append(meta.added, f.path)
		}
	}
	st.Files = len(newFiles)
	st.Coded = len(codedFiles)
	st.Deleted = len(meta.deleted)
	st.OldTreeHash = treeHash(oldFiles)
	st.NewTreeHash = treeHash(newFiles)

	// Groups: coded files in order, each group bounded by limit.
	order := make([]int, len(codedFiles))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return groupKey(newFiles[codedFiles[order[a]].file].path) < groupKey(newFiles[codedFiles[order[b]].file].path)
	})
	var groupsOf [][]int // coded-file indices per group
	{
		var cur []int
		var curSize int64
		inGroup := map[int]bool{}
		for _, ci := range order {
			c := codedFiles[ci]
			add := int64(len(c.data))
			for _, r := range c.refs {
				if !inGroup[r] {
					add += oldFiles[r].size
				}
			}
			if len(cur) > 0 && curSize+add > limit {
				groupsOf = append(groupsOf, cur)
				cur, curSize, inGroup = nil, 0, map[int]bool{}
				add = int64(len(c.data))
				for _, r := range c.refs {
					add += oldFiles[r].size
				}
			}
			cur = append(cur, ci)
			curSize += add
			for _, r := range c.refs {
				inGroup[r] = true
			}
		}
		if len(cur) > 0 {
			groupsOf = append(groupsOf, cur)
		}
	}
	for _, g := range groupsOf {
		var gr group
		seen := map[int]bool{}
		var firstUse []int
		for _, ci := range g {
			c := codedFiles[ci]
			gr.files = append(gr.files, c.file)
			gr.sizes = append(gr.sizes, int64(len(c.data)))
			for _, r := range c.refs {
				if !seen[r] {
					seen[r] = true
					firstUse = append(firstUse, r)
				}
			}
		}
		// The first used reference ends right before the data: closest distances.
		for k := len(firstUse) - 1; k >= 0; k-- {
			gr.refs = append(gr.refs, firstUse[k])
		}
		meta.groups = append(meta.groups, gr)
	}
	st.Groups = len(meta.groups)

	// Write: header, meta, groups.
	cw := &countWriter{w: w}
	h := Header{Version: version, OldTreeHash: st.OldTreeHash, NewTreeHash: st.NewTreeHash, Files: len(newFiles), NewSize: st.NewSize}
	if _, err := writeHeader(cw, h, par.lc); err != nil {
		return st, err
	}
	oldPaths := make([]string, len(oldFiles))
	for i, f := range oldFiles {
		oldPaths[i] = f.path
	}
	rawMeta := encodeMeta(meta)
	encMeta := lzCompress(par, pathDict(oldPaths), rawMeta)
	if err := writeBlock(cw, uint64(len(rawMeta)), encMeta); err != nil {
		return st, err
	}
	for _, r := range rawFiles {
		if _, err := cw.Write(r); err != nil {
			return st, err
		}
		st.RawSize += int64(len(r))
	}
	st.Raw = len(rawFiles)
	var S []byte
	tables := &lzTables{}
	for gi, g := range groupsOf {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		var err error
		if S, err = loadRefs(oldTree, oldFiles, meta.groups[gi].refs, S[:0]); err != nil {
			return st, err
		}
		dictLen := len(S)
		st.RefSize += int64(dictLen)
		for _, ci := range g {
			S = append(S, codedFiles[ci].data...)
			codedFiles[ci].data = nil // S holds it now
		}
		st.CodedSize += int64(len(S) - dictLen)
		enc := lzCompressBuf(par, S, dictLen, tables)
		if err := writeBlock(cw, 0, enc); err != nil {
			return st, err
		}
	}
	st.PatchSize = cw.n
	st.Duration = time.Since(start)
	return st, nil
}

// loadRefs concatenates old files (checking their hashes).
func loadRefs(fsys fs.FS, oldFiles []fileEntry, refs []int, dst []byte) ([]byte, error) {
	for _, r := range refs {
		var err error
		if dst, err = appendFile(fsys, oldFiles[r], dst); err != nil {
			return nil, fmt.Errorf("old tree changed while creating the patch: %w", err)
		}
	}
	return dst, nil
}

// incompressible reports whether data looks like already compressed content:
// at least 1 KiB with an order-0 entropy above IncompressibleEntropy.
func incompressible(data []byte) bool {
	return len(data) >= 1024 && Entropy(data) > IncompressibleEntropy
}

// IncompressibleEntropy is the order-0 entropy (bits per byte) above which content is
// treated as already compressed and stored raw.
const IncompressibleEntropy = 7.8

// Entropy is the order-0 entropy of b in bits per byte.
func Entropy(b []byte) float64 {
	var hist [256]int
	for _, c := range b {
		hist[c]++
	}
	n := float64(len(b))
	h := 0.0
	for _, c := range hist {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// groupKey orders coded files in a stream: by extension, then by path, so
// that similar files (and their references) sit close together.
func groupKey(p string) string {
	return path.Ext(p) + "\x00" + p
}

func writeBlock(w io.Writer, raw uint64, enc []byte) error {
	var b []byte
	if raw != 0 {
		b = putUvarint(b, raw)
	}
	b = putUvarint(b, uint64(len(enc)))
	if _, err := w.Write(b); err != nil {
		return err
	}
	_, err := w.Write(enc)
	return err
}

// appendFile appends an old file's content, checking it still has its hash.
func appendFile(fsys fs.FS, e fileEntry, dst []byte) ([]byte, error) {
	start := len(dst)
	dst, err := readFileInto2(fsys, e.path, dst)
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(dst[start:]) != e.sum {
		return nil, fmt.Errorf("%s: content changed", e.path)
	}
	return dst, nil
}

// readFileInto2 appends a file's content to dst.
func readFileInto2(fsys fs.FS, name string, dst []byte) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := f.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
}

// ErrOldTree is returned (wrapped) by Apply when the old tree is not the one
// the patch was made from.
var ErrOldTree = errors.New("delta: old tree hash mismatch")

// ErrVerify is returned (wrapped) by Apply when the result does not have the
// new tree hash named in the patch.
var ErrVerify = errors.New("delta: result verification failed")

// Apply reads the patch and writes the complete new tree into outDir, which
// must not exist or be empty. The tree is written into a temporary sibling
// folder (outDir + ".tmp-*"), verified (every output file's sha256 through the
// new tree hash named in the patch) and only then renamed to outDir; on any
// error the temporary folder is removed and outDir is left as it was.
func Apply(ctx context.Context, oldTree fs.FS, patch io.Reader, outDir string) (err error) {
	if err := checkOutDir(outDir); err != nil {
		return err
	}
	br := bufio.NewReaderSize(patch, 64<<10)
	h, lc, err := readHeader(br)
	if err != nil {
		return err
	}
	oldFiles, err := walkTree(oldTree, func(int, *fileEntry, []byte) error { return ctx.Err() })
	if err != nil {
		return fmt.Errorf("old tree: %w", err)
	}
	if got := treeHash(oldFiles); got != h.OldTreeHash {
		return fmt.Errorf("%w: the patch applies to tree %s, this tree is %s", ErrOldTree, h.OldTreeHash, got)
	}
	oldPaths := make([]string, len(oldFiles))
	for i, f := range oldFiles {
		oldPaths[i] = f.path
	}
	rawLen, err := binary_ReadUvarint(br, maxMetaRaw)
	if err != nil {
		return err
	}
	encMeta, err := readBlock(br, maxMetaRaw)
	if err != nil {
		return err
	}
	rawMeta, err := lzDecompress(lc, pathDict(oldPaths), encMeta, int(rawLen))
	if err != nil {
		return fmt.Errorf("%w: metadata: %v", ErrFormat, err)
	}
	meta, newPaths, oldOf, err := decodeMeta(rawMeta, oldPaths, h.Files)
	if err != nil {
		return err
	}

	parent := filepath.Dir(filepath.Clean(outDir))
	tmp, err := os.MkdirTemp(parent, filepath.Base(filepath.Clean(outDir))+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()

	sums := make([][32]byte, len(newPaths))
	var total int64
	w := &treeWriter{root: tmp, dirs: map[string]bool{}}
	// Kept and copied files (their content is covered by the old tree hash).
	var jobs []copyJob
	for i, op := range meta.ops {
		switch op {
		case opKeep:
			jobs = append(jobs, copyJob{oldPaths[oldOf[i]], newPaths[i], oldFiles[oldOf[i]].size})
			sums[i] = oldFiles[oldOf[i]].sum
		case opCopy:
			jobs = append(jobs, copyJob{oldPaths[meta.copyOf[i]], newPaths[i], oldFiles[meta.copyOf[i]].size})
			sums[i] = oldFiles[meta.copyOf[i]].sum
		default:
			continue
		}
		total += jobs[len(jobs)-1].size
	}
	if err := w.copyAll(ctx, oldTree, jobs); err != nil {
		return err
	}
	// Raw files follow the metadata, in new path order.
	for i, op := range meta.ops {
		if op != opRaw {
			continue
		}
		n := int64(meta.copyOf[i])
		if total+n > h.NewSize {
			return fmt.Errorf("%w: more data than the header announces", ErrFormat)
		}
		sum, err := w.writeFrom(newPaths[i], io.LimitReader(br, n), n)
		if err != nil {
			return err
		}
		sums[i] = sum
		total += n
	}
	// Coded groups: references and output share one buffer.
	var buf []byte
	for _, g := range meta.groups {
		if err := ctx.Err(); err != nil {
			return err
		}
		var n, refSize int64
		for _, s := range g.sizes {
			n += s
		}
		if total+n > h.NewSize {
			return fmt.Errorf("%w: more data than the header announces", ErrFormat)
		}
		for _, r := range g.refs {
			refSize += oldFiles[r].size
		}
		if need := refSize + min(n, 256<<20); int64(cap(buf)) < need {
			buf = nil // let the previous group's buffer go first
			buf = make([]byte, 0, need)
		}
		buf = buf[:0]
		for _, r := range g.refs {
			if buf, err = appendFile(oldTree, oldFiles[r], buf); err != nil {
				return fmt.Errorf("old tree: %w", err)
			}
		}
		dictLen := len(buf)
		enc, err := readBlock(br, maxNewSize)
		if err != nil {
			return err
		}
		dec := newLZDecoder(lc, enc)
		// Matches may run across file boundaries: decode the whole group.
		if buf, err = dec.decode(buf, int(n)); err != nil {
			return fmt.Errorf("%w: group stream: %v", ErrFormat, err)
		}
		off := dictLen
		for k, f := range g.files {
			data := buf[off : off+int(g.sizes[k])]
			off += int(g.sizes[k])
			sums[f] = sha256.Sum256(data)
			if err := w.write(newPaths[f], data); err != nil {
				return err
			}
		}
		total += n
	}
	if total != h.NewSize {
		return fmt.Errorf("%w: wrote %d bytes, header says %d", ErrVerify, total, h.NewSize)
	}
	newFiles := make([]fileEntry, len(newPaths))
	for i, p := range newPaths {
		newFiles[i] = fileEntry{path: p, sum: sums[i]}
	}
	if got := treeHash(newFiles); got != h.NewTreeHash {
		return fmt.Errorf("%w: result has tree hash %s, patch promises %s", ErrVerify, got, h.NewTreeHash)
	}
	// Nothing may follow the last group.
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: trailing bytes after the last group", ErrFormat)
	}
	if err := os.Remove(outDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(tmp, outDir)
}

func binary_ReadUvarint(br *bufio.Reader, max uint64) (uint64, error) {
	v, err := readUvarint(br)
	if err != nil || v > max {
		return 0, fmt.Errorf("%w: bad length", ErrFormat)
	}
	return v, nil
}

func readUvarint(br *bufio.Reader) (uint64, error) {
	var x uint64
	var s uint
	for i := 0; i < 10; i++ {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if b < 0x80 {
			return x | uint64(b)<<s, nil
		}
		x |= uint64(b&0x7f) << s
		s += 7
	}
	return 0, ErrFormat
}

func checkOutDir(outDir string) error {
	if outDir == "" {
		return errors.New("delta: empty output folder name")
	}
	st, err := os.Stat(outDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("delta: output %s exists and is not a folder", outDir)
	}
	ents, err := os.ReadDir(outDir)
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("delta: output folder %s is not empty", outDir)
	}
	return nil
}

type treeWriter struct {
	root string
	mu   sync.Mutex
	dirs map[string]bool
}

type copyJob struct {
	src, dst string
	size     int64
}

// copyAll copies old files into the new tree with a few workers.
func (t *treeWriter) copyAll(ctx context.Context, fsys fs.FS, jobs []copyJob) error {
	// create folders first, in order
	for _, j := range jobs {
		if err := t.mkdirFor(j.dst); err != nil {
			return err
		}
	}
	const workers = 4
	var wg sync.WaitGroup
	errs := make([]error, workers)
	next := make(chan copyJob, len(jobs))
	for _, j := range jobs {
		next <- j
	}
	close(next)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for j := range next {
				if errs[w] != nil {
					continue
				}
				if err := ctx.Err(); err != nil {
					errs[w] = err
					continue
				}
				errs[w] = t.copyFile(fsys, j)
			}
		}(w)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *treeWriter) copyFile(fsys fs.FS, j copyJob) error {
	in, err := fsys.Open(j.src)
	if err != nil {
		return fmt.Errorf("old tree: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(filepath.Join(t.root, filepath.FromSlash(j.dst)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	var n int64
	if f, ok := in.(*os.File); ok {
		n, err = io.Copy(out, f) // copy_file_range where the OS has it
	} else {
		n, err = io.Copy(out, in)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != j.size {
		err = fmt.Errorf("old tree: %s changed while applying the patch", j.src)
	}
	return err
}

func (t *treeWriter) mkdirFor(rel string) error {
	d := path.Dir(rel)
	t.mu.Lock()
	defer t.mu.Unlock()
	if d == "." || t.dirs[d] {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(t.root, filepath.FromSlash(d)), 0o755); err != nil {
		return err
	}
	t.dirs[d] = true
	return nil
}

func (t *treeWriter) write(rel string, data []byte) error {
	if err := t.mkdirFor(rel); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(t.root, filepath.FromSlash(rel)), data, 0o644)
}

func (t *treeWriter) writeFrom(rel string, r io.Reader, n int64) ([32]byte, error) {
	var sum [32]byte
	if err := t.mkdirFor(rel); err != nil {
		return sum, err
	}
	out, err := os.OpenFile(filepath.Join(t.root, filepath.FromSlash(rel)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return sum, err
	}
	hs := sha256.New()
	k, err := io.Copy(io.MultiWriter(out, hs), r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && k != n {
		err = fmt.Errorf("%w: truncated patch", ErrFormat)
	}
	if err != nil {
		return sum, err
	}
	copy(sum[:], hs.Sum(nil))
	return sum, nil
}

func hashSum(h hash.Hash) []byte { return h.Sum(nil) }
