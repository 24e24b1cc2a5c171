package bolt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/bolt"
	"github.com/otakit/ota/shared/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Table {
		tb, err := bolt.Open(filepath.Join(t.TempDir(), "ota.db"))
		if err != nil {
			t.Fatal(err)
		}
		return tb
	})
}

func TestOpenCreatesFilePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "ota.db")
	tb, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ota.db")
	tb, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	start := time.Now()
	_, err = bolt.Open(path)
	if err == nil || !strings.Contains(err.Error(), "database is locked") {
		t.Fatalf("second open: %v, want a 'database is locked' error", err)
	}
	if d := time.Since(start); d < time.Second || d > 10*time.Second {
		t.Fatalf("second open gave up after %v, want about 2s", d)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ota.db")
	ctx := context.Background()
	tb, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Put(ctx, store.Item{PK: "P", SK: "a", Data: []byte(`{}`)}, store.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Add(ctx, "P", "n", 3, 0); err != nil {
		t.Fatal(err)
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tb.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	tb, err = bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	it, err := tb.Get(ctx, "P", "n")
	if err != nil || it.N != 3 {
		t.Fatalf("after reopen: %+v, %v", it, err)
	}
}

func TestSweepRemovesOnlyExpired(t *testing.T) {
	ctx := context.Background()
	tb, err := bolt.Open(filepath.Join(t.TempDir(), "ota.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	past, future := time.Now().Add(-time.Hour).Unix(), time.Now().Add(time.Hour).Unix()
	var ops []store.Op
	for i := range 2500 { // 25 items per transaction keeps the test fast
		exp := past
		if i%10 == 0 {
			exp = future
		}
		ops = append(ops, store.Op{Kind: store.OpPut, Item: store.Item{PK: "P", SK: fmt.Sprintf("%05d", i), Data: []byte(`{}`), Expires: exp}})
		if len(ops) == store.MaxTransactOps {
			if err := tb.Transact(ctx, ops); err != nil {
				t.Fatal(err)
			}
			ops = nil
		}
	}
	n, err := tb.Sweep(time.Now())
	if err != nil || n != 2250 {
		t.Fatalf("Sweep = %d, %v; want 2250", n, err)
	}
	var raw int
	if err := tb.DB().View(func(tx *bbolt.Tx) error {
		raw = tx.Bucket([]byte("items")).Stats().KeyN
		return nil
	}); err != nil || raw != 250 {
		t.Fatalf("%d keys stored after sweep (%v), want 250", raw, err)
	}
	items, err := tb.Query(ctx, store.Query{PK: "P"})
	if err != nil || len(items) != 250 {
		t.Fatalf("%d live items after sweep, %v", len(items), err)
	}
	if n, _ := tb.Sweep(time.Now()); n != 0 {
		t.Fatalf("second sweep removed %d", n)
	}
}
