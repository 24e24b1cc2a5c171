package bundle

import (
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := []struct {
		name, want string
		dir        bool
		code       string
	}{
		{name: "index.html", want: "index.html"},
		{name: "js/app.js", want: "js/app.js"},
		{name: "./js/./app.js", want: "js/app.js"},
		{name: "js/", want: "js", dir: true},
		{name: "./", want: "", dir: true},
		{name: "ünïcode/файл.js", want: "ünïcode/файл.js"},
		{name: "ab:c.js", want: "ab:c.js"},       // a colon is only a drive letter in second place
		{name: "a:b.js", code: CodePathAbsolute}, // drive-relative on Windows
		{name: "", code: CodePathInvalid},
		{name: "/etc/passwd", code: CodePathAbsolute},
		{name: "//server/share", code: CodePathAbsolute},
		{name: "C:/x.js", code: CodePathAbsolute},
		{name: `c:\x.js`, code: CodePathAbsolute},
		{name: "../x.js", code: CodePathTraversal},
		{name: "a/../../x.js", code: CodePathTraversal},
		{name: "a/..", code: CodePathTraversal},
		{name: `a\b.js`, code: CodePathInvalid},
		{name: "a\x00b", code: CodePathInvalid},
		{name: "a\nb", code: CodePathInvalid},
		{name: "a\x7fb", code: CodePathInvalid},
		{name: "a\u0085b", code: CodePathInvalid},
		{name: "a//b", code: CodePathInvalid},
		{name: "\xff.js", code: CodePathInvalid},
		{name: ".", code: CodePathInvalid},
		{name: strings.Repeat("a", 256), code: CodePathInvalid},
		{name: strings.Repeat("a/", 2049), code: CodePathInvalid},
	}
	for _, tt := range tests {
		got, dir, err := cleanPath(tt.name)
		if tt.code != "" {
			if err == nil || err.Code != tt.code {
				t.Errorf("cleanPath(%q) error = %v, want code %s", tt.name, err, tt.code)
			}
			continue
		}
		if err != nil || got != tt.want || dir != tt.dir {
			t.Errorf("cleanPath(%q) = %q, %v, %v; want %q, %v", tt.name, got, dir, err, tt.want, tt.dir)
		}
	}
}

func TestIgnored(t *testing.T) {
	tests := map[string]bool{
		".DS_Store":             true,
		"js/.DS_Store":          true,
		"__MACOSX":              true,
		"__MACOSX/._index.html": true,
		"dist/__MACOSX/x":       false, // only the archive root holds resource forks
		"my.DS_Store":           false,
		"index.html":            false,
	}
	for p, want := range tests {
		if got := ignored(p); got != want {
			t.Errorf("ignored(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestPathSet(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		dirs  []string
		code  string
	}{
		{name: "distinct", files: []string{"a.js", "b/a.js", "b/c/a.js"}, dirs: []string{"b", "b/c"}},
		{name: "same file", files: []string{"a.js", "a.js"}, code: CodeDuplicatePath},
		{name: "case", files: []string{"A.js", "a.js"}, code: CodeDuplicatePath},
		{name: "file then folder", files: []string{"a", "a/b.js"}, code: CodeDuplicatePath},
		{name: "folder then file", files: []string{"a/b.js", "A"}, code: CodeDuplicatePath},
		{name: "folder entry over file", files: []string{"a"}, dirs: []string{"a"}, code: CodeDuplicatePath},
	}
	for _, tt := range tests {
		s := newPathSet()
		var err *Error
		for _, d := range tt.dirs {
			if err = s.addDir(d); err != nil {
				break
			}
		}
		for _, f := range tt.files {
			if err != nil {
				break
			}
			err = s.addFile(f)
		}
		got := ""
		if err != nil {
			got = err.Code
		}
		if got != tt.code {
			t.Errorf("%s: code %q, want %q (%v)", tt.name, got, tt.code, err)
		}
	}
}
