package bundle

import (
	"strings"
	"unicode/utf8"
)

// Android and iOS refuse longer names; failing here beats failing on devices.
const (
	maxSegment = 255
	maxPath    = 4096
)

// cleanPath validates a zip entry name (or a folder-relative path) and
// returns it cleaned: "." segments dropped and a trailing "/" removed, which
// dir reports. A folder entry that cleans to "" names the root itself.
func cleanPath(name string) (p string, dir bool, err *Error) {
	switch {
	case name == "":
		return "", false, newErr(CodePathInvalid, "empty entry name")
	case strings.HasPrefix(name, "/"):
		return "", false, newErr(CodePathAbsolute, "%q starts with /", name)
	case len(name) >= 2 && name[1] == ':' && isASCIILetter(name[0]):
		return "", false, newErr(CodePathAbsolute, "%q starts with a drive letter", name)
	case len(name) > maxPath:
		return "", false, newErr(CodePathInvalid, "%.40q... is longer than %d bytes", name, maxPath)
	case !utf8.ValidString(name):
		return "", false, newErr(CodePathInvalid, "%q is not valid UTF-8", name)
	}
	for _, r := range name {
		switch {
		case r == 0:
			return "", false, newErr(CodePathInvalid, "%q contains NUL", name)
		case r == '\\':
			return "", false, newErr(CodePathInvalid, "%q contains a backslash", name)
		case r < 0x20 || (r >= 0x7f && r < 0xa0):
			return "", false, newErr(CodePathInvalid, "%q contains a control character", name)
		}
	}
	dir = strings.HasSuffix(name, "/")
	segs := strings.Split(strings.TrimSuffix(name, "/"), "/")
	for _, s := range segs {
		if s == ".." {
			return "", false, newErr(CodePathTraversal, "%q contains a .. segment", name)
		}
	}
	kept := segs[:0]
	for _, s := range segs {
		switch {
		case s == "":
			return "", false, newErr(CodePathInvalid, "%q contains an empty segment", name)
		case s == ".":
			continue
		case len(s) > maxSegment:
			return "", false, newErr(CodePathInvalid, "%q has a segment longer than %d bytes", name, maxSegment)
		}
		kept = append(kept, s)
	}
	if len(kept) == 0 {
		if dir {
			return "", true, nil
		}
		return "", false, newErr(CodePathInvalid, "%q names no file", name)
	}
	return strings.Join(kept, "/"), dir, nil
}

func isASCIILetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// ignored reports archiver litter that is validated but never listed.
func ignored(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return first == "__MACOSX" || p == ".DS_Store" || strings.HasSuffix(p, "/.DS_Store")
}

// pathSet finds paths that would collide once unzipped. Case is folded
// because iOS and macOS file systems are case-insensitive by default.
type pathSet struct {
	files map[string]string // folded path -> path as given
	dirs  map[string]string
}

func newPathSet() *pathSet {
	return &pathSet{files: map[string]string{}, dirs: map[string]string{}}
}

func (s *pathSet) addFile(p string) *Error {
	k := strings.ToLower(p)
	if prev, ok := s.files[k]; ok {
		return newErr(CodeDuplicatePath, "%q and %q are the same path", prev, p)
	}
	if prev, ok := s.dirs[k]; ok {
		return newErr(CodeDuplicatePath, "%q is both a file and the folder %q", p, prev)
	}
	s.files[k] = p
	return s.addParents(p)
}

func (s *pathSet) addDir(p string) *Error {
	if p == "" {
		return nil
	}
	k := strings.ToLower(p)
	if prev, ok := s.files[k]; ok {
		return newErr(CodeDuplicatePath, "%q is both a folder and the file %q", p, prev)
	}
	s.dirs[k] = p
	return s.addParents(p)
}

func (s *pathSet) addParents(p string) *Error {
	for i := strings.LastIndexByte(p, '/'); i > 0; i = strings.LastIndexByte(p[:i], '/') {
		parent := p[:i]
		k := strings.ToLower(parent)
		if prev, ok := s.files[k]; ok {
			return newErr(CodeDuplicatePath, "%q is inside %q, which is a file", p, prev)
		}
		if _, ok := s.dirs[k]; ok {
			return nil // its parents were recorded with it
		}
		s.dirs[k] = parent
	}
	return nil
}
