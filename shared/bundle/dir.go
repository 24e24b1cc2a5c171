package bundle

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
)

// MS-DOS date of 1980-01-01, the earliest a zip can store; time 00:00:00.
const dosEpochDate = 1<<5 | 1

// ZipDir writes a deterministic zip of the regular files under dir: paths
// sorted bytewise with forward slashes, every entry deflated with mode 0644
// and the 1980-01-01 timestamp, no folder entries, no extra fields. The
// same tree (with the same Go version's deflate) gives byte-identical
// output. Symbolic links and other special files are refused (symlink), as
// are paths Inspect would refuse; __MACOSX and .DS_Store are left out.
// ZipDir does not check for index.html.
func ZipDir(dir string, w io.Writer) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("zip %s: %w", dir, err)
	}
	defer root.Close()
	paths, err := dirFiles(root)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	for _, p := range paths {
		if err := addFile(zw, root, p); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("zip %s: finish: %w", dir, err)
	}
	return nil
}

func addFile(zw *zip.Writer, root *os.Root, p string) error {
	hdr := &zip.FileHeader{Name: p, Method: zip.Deflate, ModifiedDate: dosEpochDate}
	hdr.SetMode(0o644) // Modified stays zero: setting it would add a timestamp extra field
	fw, err := zw.CreateHeader(hdr)
	if err != nil {
		return fmt.Errorf("zip %s: %w", p, err)
	}
	f, err := openRegular(root, p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(fw, f); err != nil {
		return fmt.Errorf("zip %s: %w", p, err)
	}
	return nil
}

// ReadDirManifest hashes the regular files under dir like Inspect hashes a
// zip, with the same path rules, refusals and skipped litter, so that
// Inspect of ZipDir(dir) gives the same manifest. Root is always "".
func ReadDirManifest(dir string) (*Manifest, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", dir, err)
	}
	defer root.Close()
	paths, err := dirFiles(root)
	if err != nil {
		return nil, err
	}
	files := make([]File, 0, len(paths))
	for _, p := range paths {
		f, err := hashFile(root, p)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return newManifest(files, ""), nil
}

func hashFile(root *os.Root, p string) (File, error) {
	f, err := openRegular(root, p)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("hash %s: %w", p, err)
	}
	return File{Path: p, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// openRegular opens p and re-checks its type, since the tree may have
// changed since it was listed (os.Root already keeps links inside dir).
func openRegular(root *os.Root, p string) (*os.File, error) {
	f, err := root.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, newErr(CodeSymlink, "%q is not a regular file", p)
	}
	return f, nil
}

// dirFiles lists the regular files under root, validated and sorted.
func dirFiles(root *os.Root) ([]string, error) {
	var paths []string
	seen := newPathSet()
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if p == "." {
			return nil
		}
		clean, _, perr := cleanPath(p)
		if perr != nil {
			return perr
		}
		switch {
		case ignored(clean):
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		case d.IsDir():
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			return newErr(CodeSymlink, "%q is a symbolic link", p)
		case !d.Type().IsRegular():
			return newErr(CodeSymlink, "%q is not a regular file", p)
		}
		if err := seen.addFile(clean); err != nil {
			return err
		}
		paths = append(paths, clean)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(paths)
	return paths, nil
}
