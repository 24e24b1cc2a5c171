package delta

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestBenchPairs creates (and applies) patches for the benchmark kit's pairs
// when OTA_BENCH_DATA points at its dataset folder (see shared/bench).
func TestBenchPairs(t *testing.T) {
	data := os.Getenv("OTA_BENCH_DATA")
	if data == "" {
		t.Skip("set OTA_BENCH_DATA to the benchmark dataset folder")
	}
	level, _ := strconv.Atoi(os.Getenv("OTA_LEVEL"))
	group, _ := strconv.Atoi(os.Getenv("OTA_GROUP"))
	pkgs, _ := filepath.Glob(filepath.Join(data, "*"))
	for _, pkg := range pkgs {
		vers, _ := filepath.Glob(filepath.Join(pkg, "*", "www"))
		if len(vers) != 2 {
			continue
		}
		t.Run(filepath.Base(pkg), func(t *testing.T) {
			var buf bytes.Buffer
			t0 := time.Now()
			st, err := Create(context.Background(), os.DirFS(vers[0]), os.DirFS(vers[1]), &buf, Options{Level: level, GroupLimit: int64(group) << 20})
			if err != nil {
				t.Fatal(err)
			}
			d := time.Since(t0)
			t0 = time.Now()
			if os.Getenv("OTA_APPLY") != "" {
				out := filepath.Join(t.TempDir(), "out")
				if err := Apply(context.Background(), os.DirFS(vers[0]), bytes.NewReader(buf.Bytes()), out); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%-16s %8d bytes  coded %d files %d B, refs %d B, create %v apply %v", filepath.Base(pkg), st.PatchSize, st.Coded, st.CodedSize, st.RefSize, d.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
		})
	}
}
