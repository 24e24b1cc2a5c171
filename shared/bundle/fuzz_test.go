package bundle

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzInspect checks that Inspect never panics, and that whatever it
// accepts Walk can stream back with matching hashes.
func FuzzInspect(f *testing.F) {
	for _, set := range []string{"bad", "good"} {
		names, _ := filepath.Glob(filepath.Join("..", "..", "testdata", set, "*"))
		for _, name := range names {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b)
			}
		}
	}
	lim := Limits{MaxEntries: 100, MaxTotal: 1 << 20, MaxFile: 1 << 20, MaxRatio: 200}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := inspectBytes(b, lim)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		err = Walk(bytes.NewReader(b), int64(len(b)), m, func(_ File, rd io.Reader) error {
			_, err := io.Copy(io.Discard, rd)
			return err
		})
		if err != nil {
			t.Fatalf("Walk after Inspect accepted: %v", err)
		}
	})
}
