package bundle

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
)

// General purpose flag bits and methods that matter here (APPNOTE 4.4.4).
const (
	flagEncrypted        = 0x0001
	flagDataDescriptor   = 0x0008
	flagStrongEncryption = 0x0040
	methodAES            = 99 // WinZip AE-1/AE-2
)

// Unix file type bits stored in the high half of ExternalAttrs.
const (
	unixTypeMask = 0o170000
	unixRegular  = 0o100000
	unixDir      = 0o040000
	unixSymlink  = 0o120000
)

// entry is a zip entry that passed the header checks.
type entry struct {
	f    *zip.File
	path string // cleaned, still including any top folder
	dir  bool
}

// Inspect validates a bundle zip of size bytes and returns its manifest.
// Every rejection is an *Error with one of the Code constants. Sizes in the
// headers are only used to refuse early: every file is inflated and its real
// byte count checked against the same limits before anything is trusted.
func Inspect(r io.ReaderAt, size int64, lim Limits) (*Manifest, error) {
	lim = lim.withDefaults()
	zr, err := openZip(r, size)
	if err != nil {
		return nil, err
	}
	if len(zr.File) == 0 {
		return nil, newErr(CodeZipEmpty, "archive has no entries")
	}
	if len(zr.File) > lim.MaxEntries {
		return nil, newErr(CodeTooManyEntries, "%d entries, limit %d", len(zr.File), lim.MaxEntries)
	}
	entries, err := checkEntries(zr.File, size, lim)
	if err != nil {
		return nil, err
	}
	if err := checkLayout(r, size, zr); err != nil {
		return nil, err
	}
	root, err := findRoot(entries)
	if err != nil {
		return nil, err
	}
	var files []File
	for _, e := range entries {
		if e.dir {
			continue
		}
		sum, err := hashEntry(e.f)
		if err != nil {
			return nil, err
		}
		if ignored(e.path) {
			continue // inflated above so litter cannot hide a bomb
		}
		files = append(files, File{
			Path:   stripRoot(e.path, root),
			SHA256: sum,
			Size:   int64(e.f.UncompressedSize64),
		})
	}
	return newManifest(files, root), nil
}

func openZip(r io.ReaderAt, size int64) (*zip.Reader, error) {
	if size < 0 {
		return nil, newErr(CodeZipInvalid, "negative size %d", size)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // our own path rules are stricter
		return nil, wrapErr(CodeZipInvalid, err, "not a readable zip")
	}
	return zr, nil
}

// checkEntries applies every check that needs only the central directory.
func checkEntries(zfs []*zip.File, size int64, lim Limits) ([]entry, error) {
	paths := newPathSet()
	entries := make([]entry, 0, len(zfs))
	var total uint64
	for _, f := range zfs {
		e, err := checkEntry(f, lim)
		if err != nil {
			return nil, err
		}
		if e.dir {
			if err := paths.addDir(e.path); err != nil {
				return nil, err
			}
			entries = append(entries, e)
			continue
		}
		if err := paths.addFile(e.path); err != nil {
			return nil, err
		}
		total += f.UncompressedSize64
		if total > uint64(lim.MaxTotal) {
			return nil, newErr(CodeTooLarge, "files inflate to more than %d bytes", lim.MaxTotal)
		}
		entries = append(entries, e)
	}
	// The archive's real size, not the sum of entry sizes, which overlapping
	// entries could inflate.
	if lim.ratioExceeded(total, uint64(size)) {
		return nil, newErr(CodeCompressionRatio, "archive of %d bytes inflates to %d", size, total)
	}
	return entries, nil
}

func checkEntry(f *zip.File, lim Limits) (entry, error) {
	p, dir, perr := cleanPath(f.Name)
	if perr != nil {
		return entry{}, perr
	}
	switch f.ExternalAttrs >> 16 & unixTypeMask {
	case 0, unixRegular:
	case unixDir:
		if !dir {
			return entry{}, newErr(CodeZipInvalid, "folder entry %q lacks a trailing /", f.Name)
		}
	case unixSymlink:
		return entry{}, newErr(CodeSymlink, "%q is a symbolic link", f.Name)
	default:
		return entry{}, newErr(CodeSymlink, "%q is not a regular file", f.Name)
	}
	if f.Flags&(flagEncrypted|flagStrongEncryption) != 0 || f.Method == methodAES {
		return entry{}, newErr(CodeEncryptedEntry, "%q is encrypted", f.Name)
	}
	e := entry{f: f, path: p, dir: dir}
	if dir {
		if f.UncompressedSize64 != 0 {
			return entry{}, newErr(CodeZipInvalid, "folder entry %q has content", f.Name)
		}
		return e, nil
	}
	usize, csize := f.UncompressedSize64, f.CompressedSize64
	switch f.Method {
	case zip.Store:
		if usize != csize {
			return entry{}, newErr(CodeZipInvalid, "stored entry %q has different sizes", f.Name)
		}
	case zip.Deflate:
	default:
		return entry{}, newErr(CodeZipInvalid, "%q uses unsupported compression method %d", f.Name, f.Method)
	}
	if usize > uint64(lim.MaxFile) {
		return entry{}, newErr(CodeFileTooLarge, "%q inflates to %d bytes, limit %d", f.Name, usize, lim.MaxFile)
	}
	if lim.ratioExceeded(usize, csize) {
		return entry{}, newErr(CodeCompressionRatio, "%q inflates %d bytes to %d", f.Name, csize, usize)
	}
	return e, nil
}

// findRoot returns "" when index.html is at the root, or the single top
// folder that holds index.html and every other entry.
func findRoot(entries []entry) (string, error) {
	var top string
	single, files := true, 0
	for _, e := range entries {
		if ignored(e.path) || e.path == "" {
			continue
		}
		if !e.dir {
			files++
			if e.path == "index.html" {
				return "", nil
			}
		}
		first, _, nested := strings.Cut(e.path, "/")
		if !nested && !e.dir {
			single = false // a file at the root
		}
		if top == "" {
			top = first
		} else if first != top {
			single = false
		}
	}
	if files == 0 {
		return "", newErr(CodeZipEmpty, "archive has no files")
	}
	if !single {
		return "", newErr(CodeNoIndexHTML, "no index.html at the root and no single top folder")
	}
	for _, e := range entries {
		if !e.dir && e.path == top+"/index.html" {
			return top, nil
		}
	}
	return "", newErr(CodeNoIndexHTML, "no index.html at the root or in %q", top+"/")
}

// stripRoot makes a cleaned zip path relative to the bundle root.
func stripRoot(p, root string) string {
	if root == "" {
		return p
	}
	return strings.TrimPrefix(p, root+"/")
}

// hashEntry inflates one file, reading at most one byte past its declared
// size, and returns its SHA-256. Declared sizes already passed the limits.
func hashEntry(f *zip.File) (string, error) {
	rc, err := f.Open()
	if err != nil {
		return "", wrapErr(CodeZipInvalid, err, "open %q", f.Name)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(rc, int64(f.UncompressedSize64)+1))
	if err != nil {
		return "", wrapErr(CodeZipInvalid, err, "inflate %q", f.Name)
	}
	if uint64(n) != f.UncompressedSize64 {
		return "", newErr(CodeZipInvalid, "%q inflates to %d bytes but its header says %d", f.Name, n, f.UncompressedSize64)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
