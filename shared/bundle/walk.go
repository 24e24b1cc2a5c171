package bundle

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"strings"
)

// Walk calls fn for every file of m, in manifest order, with a reader of its
// bytes from the zip that Inspect accepted as m. The reader re-checks size
// and SHA-256 against m: it never yields more than File.Size bytes, and
// instead of io.EOF it returns an *Error (zip_invalid) when the bytes differ.
// fn must therefore treat the bytes as unverified until it has read to EOF
// without error. Bytes fn leaves unread are drained and checked too. An
// error from fn is returned as is.
func Walk(r io.ReaderAt, size int64, m *Manifest, fn func(f File, rd io.Reader) error) error {
	if m == nil {
		return errors.New("bundle: Walk needs a manifest")
	}
	zr, err := openZip(r, size)
	if err != nil {
		return err
	}
	byPath, err := indexFiles(zr, m.Root)
	if err != nil {
		return err
	}
	for _, mf := range m.Files {
		zf, ok := byPath[mf.Path]
		if !ok {
			return newErr(CodeZipInvalid, "%q is in the manifest but not in the zip", mf.Path)
		}
		if err := walkOne(zf, mf, fn); err != nil {
			return err
		}
	}
	return nil
}

// indexFiles maps root-relative paths to the zip's regular files.
func indexFiles(zr *zip.Reader, root string) (map[string]*zip.File, error) {
	byPath := make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		p, dir, perr := cleanPath(f.Name)
		if perr != nil {
			return nil, perr
		}
		if dir || ignored(p) || (root != "" && !strings.HasPrefix(p, root+"/")) {
			continue
		}
		rel := stripRoot(p, root)
		if _, dup := byPath[rel]; dup {
			return nil, newErr(CodeDuplicatePath, "%q appears twice", f.Name)
		}
		byPath[rel] = f
	}
	return byPath, nil
}

func walkOne(zf *zip.File, mf File, fn func(File, io.Reader) error) error {
	if mf.Size < 0 {
		return newErr(CodeZipInvalid, "%q: negative size in manifest", mf.Path)
	}
	rc, err := zf.Open()
	if err != nil {
		return wrapErr(CodeZipInvalid, err, "open %q", mf.Path)
	}
	defer rc.Close()
	vr := &verifyReader{r: io.LimitReader(rc, mf.Size+1), h: sha256.New(), want: mf}
	if err := fn(mf, vr); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, vr); err != nil {
		return err
	}
	return nil
}

// verifyReader counts and hashes what it hands out and fails, instead of
// reporting EOF, when the bytes do not match the manifest entry.
type verifyReader struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	want File
	err  error // sticky
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	if over := v.n + int64(n) - v.want.Size; over > 0 {
		n -= int(over) // never hand out bytes past the expected size
		v.err = newErr(CodeZipInvalid, "%q is larger than the %d bytes in the manifest", v.want.Path, v.want.Size)
	}
	v.n += int64(n)
	v.h.Write(p[:n])
	switch {
	case v.err != nil:
	case err == io.EOF:
		v.err = v.finish()
	case err != nil:
		v.err = wrapErr(CodeZipInvalid, err, "inflate %q", v.want.Path)
	}
	return n, v.err
}

func (v *verifyReader) finish() error {
	if v.n != v.want.Size {
		return newErr(CodeZipInvalid, "%q has %d bytes, the manifest says %d", v.want.Path, v.n, v.want.Size)
	}
	if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.SHA256 {
		return newErr(CodeZipInvalid, "%q has sha256 %s, the manifest says %s", v.want.Path, got, v.want.SHA256)
	}
	return io.EOF
}
