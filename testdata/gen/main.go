// Command gen writes the zip fixtures under testdata/bad and testdata/good
// used by shared/bundle's tests. Output is deterministic, so re-running it
// from the repository root leaves git clean:
//
//	go run ./testdata/gen
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
)

// maxFixture keeps the repository small; every fixture must stay below it.
const maxFixture = 50 << 10

func main() {
	out := flag.String("out", "testdata", "folder that receives bad/ and good/")
	flag.Parse()
	if err := run(*out); err != nil {
		log.Fatal(err)
	}
}

func run(out string) error {
	for _, set := range []struct {
		dir   string
		cases map[string]func() []byte
	}{{"bad", badCases()}, {"good", goodCases()}} {
		dir := filepath.Join(out, set.dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		names := make([]string, 0, len(set.cases))
		for name := range set.cases {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			b := set.cases[name]()
			if len(b) >= maxFixture {
				return fmt.Errorf("%s/%s is %d bytes, keep fixtures under %d", set.dir, name, len(b), maxFixture)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
		}
	}
	return nil
}

const indexHTML = "<!doctype html><title>app</title><script src=\"js/app.js\"></script>\n"

func goodCases() map[string]func() []byte {
	return map[string]func() []byte{
		// Flat layout, mixed methods, folder entries and archiver litter.
		"flat.zip": func() []byte {
			return build(
				file("index.html", indexHTML),
				dir("js/"),
				file("js/app.js", "console.log('hello')\n"),
				stored("css/app.css", "body{margin:0}\n"),
				file(".DS_Store", "\x00\x00\x00\x01Bud1"),
				file("__MACOSX/._index.html", "\x00\x05\x16\x07"),
			)
		},
		// Everything inside one top folder, as "zip -r dist.zip dist" makes.
		"top_folder.zip": func() []byte {
			return build(
				dir("dist/"),
				file("dist/index.html", indexHTML),
				dir("dist/js/"),
				file("dist/js/app.js", "console.log('hello')\n"),
				file("dist/js/.DS_Store", "\x00\x00\x00\x01Bud1"),
				file("__MACOSX/dist/._index.html", "\x00\x05\x16\x07"),
			)
		},
	}
}

func badCases() map[string]func() []byte {
	index := file("index.html", indexHTML)
	return map[string]func() []byte{
		"zip_slip.zip":       func() []byte { return build(index, file("../evil.js", "pwned")) },
		"macosx_slip.zip":    func() []byte { return build(index, file("__MACOSX/../../evil.js", "pwned")) },
		"absolute.zip":       func() []byte { return build(index, file("/var/www/evil.js", "pwned")) },
		"drive_letter.zip":   func() []byte { return build(index, file("C:/Windows/evil.js", "pwned")) },
		"backslash.zip":      func() []byte { return build(index, file(`js\app.js`, "x")) },
		"nul_byte.zip":       func() []byte { return build(index, file("app.js\x00.png", "x")) },
		"empty_segment.zip":  func() []byte { return build(index, file("js//app.js", "x")) },
		"symlink.zip":        func() []byte { return build(index, symlink("config.js", "../../../etc/passwd")) },
		"encrypted.zip":      func() []byte { return build(index, encrypted("secret.js", "x")) },
		"duplicate.zip":      func() []byte { return build(index, file("index.html", "<p>other</p>")) },
		"duplicate_case.zip": func() []byte { return build(index, file("App.js", "a"), file("app.js", "b")) },
		"duplicate_dot.zip":  func() []byte { return build(index, file("./index.html", "<p>other</p>")) },
		"file_dir_clash.zip": func() []byte { return build(index, file("js", "x"), file("js/app.js", "y")) },
		"no_index.zip":       func() []byte { return build(file("app.js", "x"), file("css/app.css", "y")) },
		"two_tops.zip":       func() []byte { return build(file("a/index.html", indexHTML), file("b/app.js", "x")) },
		"empty.zip":          func() []byte { return build() },
		"only_folders.zip":   func() []byte { return build(dir("dist/"), dir("dist/js/")) },
		"not_a_zip.zip":      func() []byte { return []byte("<html>this is not a zip</html>\n") },
		"bomb_ratio.zip":     func() []byte { return build(index, file("zeros.bin", string(make([]byte, 8<<20)))) },
		"macosx_bomb.zip":    func() []byte { return build(index, file("__MACOSX/zeros", string(make([]byte, 8<<20)))) },
		"unsupported_method.zip": func() []byte {
			return build(index, raw("app.bz2", 12, []byte("BZh91AY&SY"), 10, 0))
		},
		"truncated.zip": func() []byte {
			b := build(index, file("js/app.js", "console.log('hello')\n"))
			return b[:len(b)*2/3]
		},
		"trailing_data.zip": func() []byte {
			return append(build(index), "trailing bytes"...)
		},
		// The central directory says 100 bytes; the data inflates to 4 MiB.
		"lying_size.zip": func() []byte {
			zeros := deflate(make([]byte, 4<<20))
			return build(index, raw("small.js", 8, zeros, 100, 0))
		},
		// Streaming unzippers read the local name "../evil.js", not the
		// central one.
		"local_name_mismatch.zip": func() []byte {
			b := build(index, file("aaaaaaa.js", "pwned"))
			i := bytes.Index(b, []byte("aaaaaaa.js"))
			copy(b[i:], "../evil.js")
			return b
		},
		// A stored entry whose data holds a second entry's local header,
		// the building block of overlapping-entry bombs.
		"overlap.zip": overlap,
	}
}
