package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// File is one regular file of a bundle.
type File struct {
	Path   string `json:"path"`   // relative to the bundle root, "/"-separated
	SHA256 string `json:"sha256"` // lowercase hex of the file's bytes
	Size   int64  `json:"size"`
}

// Manifest lists a bundle's files.
type Manifest struct {
	Files    []File `json:"files"` // sorted by Path (byte order)
	TreeHash string `json:"tree_hash"`
	Root     string `json:"-"` // the single top folder stripped from zip paths, "" if none
}

// TreeHash identifies a file tree independently of how it was zipped: the
// lowercase hex SHA-256 of the concatenation, in byte order of Path, of one
// line per file
//
//	path + "\x00" + sha256hex + "\n"
//
// Paths cannot contain NUL or newlines (Inspect refuses control characters),
// so the encoding is unambiguous. files need not be sorted; it is not changed.
func TreeHash(files []File) string {
	sorted := slices.Clone(files)
	sortFiles(sorted)
	h := sha256.New()
	for _, f := range sorted {
		h.Write([]byte(f.Path))
		h.Write([]byte{0})
		h.Write([]byte(f.SHA256))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sortFiles(files []File) {
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
}

func newManifest(files []File, root string) *Manifest {
	sortFiles(files)
	if files == nil {
		files = []File{}
	}
	return &Manifest{Files: files, TreeHash: TreeHash(files), Root: root}
}
