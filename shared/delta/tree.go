package delta

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
)

// fileEntry is one regular file of a tree.
type fileEntry struct {
	path string
	size int64
	sum  [32]byte
}

// treeHash is the bundle tree hash: sha256 hex over the sorted lines
// path + "\x00" + sha256hex(file) + "\n" (slash-separated relative paths, files only).
func treeHash(files []fileEntry) string {
	lines := make([]string, len(files))
	for i, f := range files {
		lines[i] = f.path + "\x00" + hex.EncodeToString(f.sum[:]) + "\n"
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		io.WriteString(h, l)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// validPath reports whether p is acceptable as a file path inside a tree.
func validPath(p string) bool {
	return p != "." && fs.ValidPath(p) && !strings.ContainsAny(p, "\\\x00")
}

// walkTree lists the regular files of a tree, sorted by path. visit, if not
// nil, is called with every file's content (the slice is reused afterwards).
func walkTree(fsys fs.FS, visit func(i int, e *fileEntry, data []byte) error) ([]fileEntry, error) {
	var files []fileEntry
	var buf []byte
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file (symlinks and special files are not supported)", p)
		}
		if !validPath(p) {
			return fmt.Errorf("%q: invalid path", p)
		}
		files = append(files, fileEntry{path: p})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	if visit == nil {
		return files, hashParallel(fsys, files)
	}
	for i := range files {
		e := &files[i]
		data, err := readFileInto(fsys, e.path, buf[:0])
		if err != nil {
			return nil, err
		}
		buf = data
		e.size = int64(len(data))
		e.sum = sha256.Sum256(data)
		if visit != nil {
			if err := visit(i, e, data); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// readFileInto reads a whole file, reusing buf when it is large enough.
func readFileInto(fsys fs.FS, name string, buf []byte) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 0 && int64(cap(buf)) < st.Size()+1 {
		buf = make([]byte, 0, st.Size()+1)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
}

// hashParallel fills in the sizes and hashes of files with a few workers
// (file opening dominates on trees of many small files).
func hashParallel(fsys fs.FS, files []fileEntry) error {
	const workers = 4
	var wg sync.WaitGroup
	errs := make([]error, workers)
	next := make(chan int, len(files))
	for i := range files {
		next <- i
	}
	close(next)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			h := sha256.New()
			buf := make([]byte, 64<<10)
			for i := range next {
				if errs[w] != nil {
					continue
				}
				e := &files[i]
				f, err := fsys.Open(e.path)
				if err != nil {
					errs[w] = err
					continue
				}
				h.Reset()
				n, err := io.CopyBuffer(h, onlyReader{f}, buf)
				f.Close()
				if err != nil {
					errs[w] = fmt.Errorf("%s: %w", e.path, err)
					continue
				}
				e.size = n
				h.Sum(e.sum[:0])
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

type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
