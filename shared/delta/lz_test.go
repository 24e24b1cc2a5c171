package delta

import (
	"bytes"
	"math/rand"
	"testing"
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
