package delta

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"
)

// genBundle makes a deterministic ~3 MB web bundle and a next release of it:
// hashed chunk names change, some chunks get small edits, some files are
// added and removed, most assets stay.
func genBundle() (tree, tree) {
	r := rand.New(rand.NewSource(2026))
	old, new := tree{}, tree{}
	hash := func() string { return fmt.Sprintf("%08x", r.Uint32()) }
	for i := 0; i < 40; i++ {
		body := randText(r, 20000+r.Intn(40000))
		name := fmt.Sprintf("assets/chunk%d-", i)
		old[name+hash()+".js"] = body
		switch {
		case i%5 == 0: // edited
			k := r.Intn(len(body))
			new[name+hash()+".js"] = body[:k] + randText(r, 200) + body[k+100:]
		case i%7 == 0: // removed
		default: // renamed only, with an import of a renamed chunk inside
			new[name+hash()+".js"] = strings.Replace(body, "value", "value2", 3)
		}
	}
	for i := 0; i < 300; i++ {
		icon := fmt.Sprintf("icons/i%03d.svg", i)
		old[icon] = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><path d="` + randText(r, 400) + `"/></svg>`
		new[icon] = old[icon]
	}
	for i := 0; i < 10; i++ {
		img := fmt.Sprintf("img/p%d.png", i)
		old[img] = randBinary(r, 50000)
		new[img] = old[img]
	}
	new["assets/added.js"] = randText(r, 30000)
	old["index.html"] = "<html>" + randText(r, 2000)
	new["index.html"] = old["index.html"] + "<!-- new -->"
	return old, new
}

func BenchmarkCreate(b *testing.B) {
	old, new := genBundle()
	oldFS, newFS := old.fs(), new.fs()
	var size int64
	for _, c := range new {
		size += int64(len(c))
	}
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var buf bytes.Buffer
		st, err := Create(context.Background(), oldFS, newFS, &buf, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.PatchSize), "patch-bytes")
	}
}

func BenchmarkApply(b *testing.B) {
	old, new := genBundle()
	oldFS, newFS := old.fs(), new.fs()
	var buf bytes.Buffer
	if _, err := Create(context.Background(), oldFS, newFS, &buf, Options{}); err != nil {
		b.Fatal(err)
	}
	var size int64
	for _, c := range new {
		size += int64(len(c))
	}
	b.SetBytes(size)
	dir := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out := filepath.Join(dir, fmt.Sprint(i))
		if err := Apply(context.Background(), oldFS, bytes.NewReader(buf.Bytes()), out); err != nil {
			b.Fatal(err)
		}
	}
}
