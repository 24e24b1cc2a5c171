package delta

import (
	"bytes"
	"math/rand"
	"os"
	"testing"
	"time"
)

func TestLZRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 50; i++ {
		dict := make([]byte, r.Intn(5000))
		for j := range dict {
			dict[j] = byte('a' + r.Intn(4))
		}
		data := make([]byte, 0, 8000)
		for len(data) < r.Intn(8000) {
			if len(dict) > 0 && r.Intn(2) == 0 {
				a := r.Intn(len(dict))
				b := min(len(dict), a+r.Intn(300))
				data = append(data, dict[a:b]...)
			} else {
				data = append(data, byte(r.Intn(256)))
			}
		}
		enc := lzCompress(defaultEncParams, dict, data)
		got, err := lzDecompress(defaultLC, dict, enc, len(data))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip %d failed: %v", i, err)
		}
	}
}

func TestLZExperiment(t *testing.T) {
	base := os.Getenv("LZEXP")
	if base == "" {
		t.Skip()
	}
	ref, _ := os.ReadFile(base + ".ref")
	nw, _ := os.ReadFile(base + ".new")
	t0 := time.Now()
	enc := lzCompress(defaultEncParams, ref, nw)
	t1 := time.Now()
	got, err := lzDecompress(defaultLC, ref, enc, len(nw))
	if err != nil || !bytes.Equal(got, nw) {
		t.Fatal("mismatch", err)
	}
	t.Logf("%s: %d bytes, enc %v dec %v", base, len(enc), t1.Sub(t0), time.Since(t1))
}
