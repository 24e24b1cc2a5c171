package fluxpatch

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math/rand"
	"testing"
)

func gunzipPayload(t *testing.T, patch []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(patch[HeaderSize:]))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSpecVector(t *testing.T) {
	old := []byte("FLUX\x01hello world v1")
	new := []byte("FLUX\x01hello world v2!")
	p, err := Create(old, new)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 0, 0, 0x13, 0, 0, 0, 0x14, 0}; !bytes.Equal(p[:HeaderSize], want) {
		t.Fatalf("header % x, want % x", p[:HeaderSize], want)
	}
	wantPayload := append(make([]byte, 18), 0x03, 0x21)
	if got := gunzipPayload(t, p); !bytes.Equal(got, wantPayload) {
		t.Fatalf("payload % x, want % x", got, wantPayload)
	}
	got, err := Apply(old, p)
	if err != nil || !bytes.Equal(got, new) {
		t.Fatalf("apply: %q %v", got, err)
	}
}

func TestModes(t *testing.T) {
	cases := []struct {
		oldLen, newLen int
		mode           byte
	}{
		{0, 10, ModeFull},
		{10, 0, ModeFull},
		{0, 0, ModeFull},
		{10, 20, ModeFull}, // exactly 0.5
		{20, 10, ModeFull}, // exactly 0.5
		{10, 21, ModeFull},
		{11, 20, ModeXOR},
		{20, 11, ModeXOR},
		{19, 20, ModeXOR},
		{5, 5, ModeXOR},
	}
	r := rand.New(rand.NewSource(1))
	for _, c := range cases {
		old := make([]byte, c.oldLen)
		new := make([]byte, c.newLen)
		r.Read(old)
		r.Read(new)
		p, err := Create(old, new)
		if err != nil {
			t.Fatal(err)
		}
		if p[8] != c.mode {
			t.Errorf("%d->%d: mode %d, want %d", c.oldLen, c.newLen, p[8], c.mode)
		}
		if c.mode == ModeFull {
			if got := gunzipPayload(t, p); !bytes.Equal(got, new) {
				t.Errorf("%d->%d: full payload is not the new chunk", c.oldLen, c.newLen)
			}
		} else if got := gunzipPayload(t, p); len(got) != max(c.oldLen, c.newLen) {
			t.Errorf("%d->%d: XOR payload has %d bytes", c.oldLen, c.newLen, len(got))
		}
		got, err := Apply(old, p)
		if err != nil || !bytes.Equal(got, new) {
			t.Errorf("%d->%d: apply failed: %v", c.oldLen, c.newLen, err)
		}
	}
}

func TestApplyRejects(t *testing.T) {
	old := []byte("0123456789")
	p, err := Create(old, []byte("0123456789abc"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(old[:9], p); !errors.Is(err, ErrOldLength) {
		t.Errorf("wrong old length: %v", err)
	}
	if _, err := Apply(append(old, 'x'), p); !errors.Is(err, ErrOldLength) {
		t.Errorf("wrong old length: %v", err)
	}
	for n := 0; n < HeaderSize; n++ {
		if _, err := Apply(old, p[:n]); !errors.Is(err, ErrShortPatch) {
			t.Errorf("%d-byte patch: %v", n, err)
		}
	}
	if _, err := Apply(old, p[:HeaderSize+3]); err == nil {
		t.Error("broken gzip accepted")
	}
}

func TestApplyForeignGzip(t *testing.T) {
	// Any standard gzip stream must decode, e.g. one written at another level.
	old := []byte("abcdef")
	new := []byte("abcxyz")
	var buf bytes.Buffer
	buf.Write([]byte{0, 0, 0, 6, 0, 0, 0, 6, 0})
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	d := make([]byte, 6)
	for i := range d {
		d[i] = old[i] ^ new[i]
	}
	zw.Write(d)
	zw.Close()
	got, err := Apply(old, buf.Bytes())
	if err != nil || !bytes.Equal(got, new) {
		t.Fatalf("%q %v", got, err)
	}
}

func TestRoundTripProperty(t *testing.T) {
	r := rand.New(rand.NewSource(99))
	for i := 0; i < 500; i++ {
		old := make([]byte, r.Intn(300))
		r.Read(old)
		var new []byte
		switch r.Intn(3) {
		case 0:
			new = make([]byte, r.Intn(300))
			r.Read(new)
		case 1:
			new = append([]byte(nil), old...)
			for k := 0; k < 5 && len(new) > 0; k++ {
				new[r.Intn(len(new))] ^= byte(r.Intn(255) + 1)
			}
		default:
			new = append(append([]byte(nil), old...), make([]byte, r.Intn(50))...)
		}
		p, err := Create(old, new)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Apply(old, p)
		if err != nil || !bytes.Equal(got, new) {
			t.Fatalf("case %d (%d->%d bytes): %v", i, len(old), len(new), err)
		}
	}
}

func FuzzApply(f *testing.F) {
	p, _ := Create([]byte("FLUX\x01hello world v1"), []byte("FLUX\x01hello world v2!"))
	f.Add([]byte("FLUX\x01hello world v1"), p)
	f.Fuzz(func(t *testing.T, old, patch []byte) {
		_, _ = Apply(old, patch)
	})
}
