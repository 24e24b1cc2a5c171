// Package storetest is the contract every store.Table backend must pass. Each
// backend's tests call Run with a constructor for a fresh, empty table; the same
// cases then run against bbolt and DynamoDB (Local), which keeps them interchangeable.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// Run runs every contract case as a parallel subtest. newTable must return a fresh,
// empty table; Run closes it when the subtest ends (Close must tolerate a second call
// if newTable also registers one).
func Run(t *testing.T, newTable func(t *testing.T) store.Table) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tb := newTable(t)
			t.Cleanup(func() {
				if err := tb.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			c.fn(t, tb)
		})
	}
}

var cases = []struct {
	name string
	fn   func(t *testing.T, tb store.Table)
}{
	{"GetMissing", testGetMissing},
	{"PutGetRevisions", testPutGetRevisions},
	{"PutIfAbsent", testPutIfAbsent},
	{"PutIfRev", testPutIfRev},
	{"PutIfExists", testPutIfExists},
	{"ExpiredInvisible", testExpiredInvisible},
	{"ExpiredConditions", testExpiredConditions},
	{"QueryPrefixOrder", testQueryPrefixOrder},
	{"QueryPartitionsDistinct", testQueryPartitionsDistinct},
	{"QueryLimitSkipsExpired", testQueryLimitSkipsExpired},
	{"QueryPaginates", testQueryPaginates},
	{"AddCreatesAndAccumulates", testAdd},
	{"AddExpired", testAddExpired},
	{"AddConcurrent", testAddConcurrent},
	{"IfRevConcurrentOneWinner", testIfRevConcurrent},
	{"Delete", testDelete},
	{"TransactAllOrNothing", testTransactAllOrNothing},
	{"TransactCheck", testTransactCheck},
	{"TransactDelete", testTransactDelete},
	{"TransactUnconditionalPut", testTransactUnconditionalPut},
	{"TransactAdd", testTransactAdd},
	{"TransactLimits", testTransactLimits},
	{"KeysAndData", testKeysAndData},
	{"ItemSizeLimit", testItemSize},
	{"StoreApps", testStoreApps},
	{"StoreReleases", testStoreReleases},
	{"StoreChannelConcurrent", testStoreChannelConcurrent},
	{"StoreChannelHistoryChangesOnly", testStoreChannelChangesOnly},
	{"StoreDeviceFailureMemory", testStoreDevice},
	{"StoreDeviceChannelOverride", testStoreDeviceChannel},
	{"StoreAdoptionProperty", testStoreAdoptionProperty},
	{"StoreAdoptionLegacy", testStoreAdoptionLegacy},
	{"StoreAPIKeysHashed", testStoreKeys},
	{"StoreStatsSharded", testStoreStats},
	{"StoreFirstSeen", testStoreFirstSeen},
	{"StoreStatsExactlyOnce", testStoreStatsOnce},
	{"StoreEventExactlyOnce", testStoreEventOnce},
	{"StoreSeqPatchesAudit", testStoreMisc},
}

// ---- helpers

func ctx(t *testing.T) context.Context { return t.Context() }

func past() int64   { return time.Now().Add(-time.Hour).Unix() }
func future() int64 { return time.Now().Add(time.Hour).Unix() }

func doc(s string) []byte { return []byte(`{"v":"` + s + `"}`) }

func put(t *testing.T, tb store.Table, it store.Item, c store.Cond) store.Item {
	t.Helper()
	got, err := tb.Put(ctx(t), it, c)
	if err != nil {
		t.Fatalf("put %s/%s %+v: %v", it.PK, it.SK, c, err)
	}
	return got
}

func putErr(t *testing.T, tb store.Table, it store.Item, c store.Cond, want error) {
	t.Helper()
	_, err := tb.Put(ctx(t), it, c)
	if !errors.Is(err, want) {
		t.Fatalf("put %s/%s %+v: err = %v, want %v", it.PK, it.SK, c, err, want)
	}
}

func get(t *testing.T, tb store.Table, pk, sk string) store.Item {
	t.Helper()
	it, err := tb.Get(ctx(t), pk, sk)
	if err != nil {
		t.Fatalf("get %s/%s: %v", pk, sk, err)
	}
	return it
}

func absent(t *testing.T, tb store.Table, pk, sk string) {
	t.Helper()
	it, err := tb.Get(ctx(t), pk, sk)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get %s/%s: got %+v, err %v; want ErrNotFound", pk, sk, it, err)
	}
}

func add(t *testing.T, tb store.Table, pk, sk string, d, exp int64) int64 {
	t.Helper()
	n, err := tb.Add(ctx(t), pk, sk, d, exp)
	if err != nil {
		t.Fatalf("add %s/%s: %v", pk, sk, err)
	}
	return n
}

func query(t *testing.T, tb store.Table, q store.Query) []string {
	t.Helper()
	items, err := tb.Query(ctx(t), q)
	if err != nil {
		t.Fatalf("query %+v: %v", q, err)
	}
	sks := make([]string, 0, len(items))
	for _, it := range items {
		if it.PK != q.PK {
			t.Fatalf("query %+v returned item of partition %q", q, it.PK)
		}
		sks = append(sks, it.SK)
	}
	return sks
}

func wantSKs(t *testing.T, tb store.Table, q store.Query, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := query(t, tb, q); !slices.Equal(got, want) {
		t.Fatalf("query %+v = %q, want %q", q, got, want)
	}
}

func transactErr(t *testing.T, tb store.Table, ops []store.Op, want error) {
	t.Helper()
	err := tb.Transact(ctx(t), ops)
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("transact: err = %v, want %v", err, want)
	}
}

func it(pk, sk, v string) store.Item { return store.Item{PK: pk, SK: sk, Data: doc(v)} }

var (
	always   = store.Cond{Kind: store.Always}
	ifAbsent = store.Cond{Kind: store.IfAbsent}
	ifExists = store.Cond{Kind: store.IfExists}
)

func ifRev(r int64) store.Cond { return store.Cond{Kind: store.IfRev, Rev: r} }

// ---- Table cases

func testGetMissing(t *testing.T, tb store.Table) {
	absent(t, tb, "P", "nothing")
	wantSKs(t, tb, store.Query{PK: "P"})
}

func testPutGetRevisions(t *testing.T, tb store.Table) {
	got := put(t, tb, it("P", "a", "1"), always)
	if got.Rev != 1 || got.PK != "P" || got.SK != "a" || string(got.Data) != string(doc("1")) || got.Expires != 0 || got.N != 0 {
		t.Fatalf("first put returned %+v, want rev 1 and the document", got)
	}
	g := get(t, tb, "P", "a")
	if g.Rev != 1 || string(g.Data) != string(doc("1")) || g.Expires != 0 || g.PK != "P" || g.SK != "a" {
		t.Fatalf("get = %+v", g)
	}
	if got = put(t, tb, it("P", "a", "2"), always); got.Rev != 2 || string(got.Data) != string(doc("2")) {
		t.Fatalf("second put returned %+v, want rev 2", got)
	}
	if g = get(t, tb, "P", "a"); g.Rev != 2 || string(g.Data) != string(doc("2")) {
		t.Fatalf("get after second put = %+v", g)
	}
	exp := future()
	withExp := it("P", "a", "3")
	withExp.Expires = exp
	if got = put(t, tb, withExp, always); got.Rev != 3 || got.Expires != exp {
		t.Fatalf("put with expiry returned %+v", got)
	}
	if g = get(t, tb, "P", "a"); g.Expires != exp {
		t.Fatalf("get: expires %d, want %d", g.Expires, exp)
	}
	if got = put(t, tb, it("P", "a", "4"), always); got.Rev != 4 || got.Expires != 0 {
		t.Fatalf("put without expiry returned %+v, want expires cleared", got)
	}
	if g = get(t, tb, "P", "a"); g.Expires != 0 || g.Rev != 4 {
		t.Fatalf("get: %+v, want expiry cleared", g)
	}
	// other keys are independent
	if got = put(t, tb, it("P", "b", "x"), always); got.Rev != 1 {
		t.Fatalf("other key rev %d", got.Rev)
	}
}

func testPutIfAbsent(t *testing.T, tb store.Table) {
	if got := put(t, tb, it("P", "a", "1"), ifAbsent); got.Rev != 1 {
		t.Fatalf("rev %d", got.Rev)
	}
	putErr(t, tb, it("P", "a", "2"), ifAbsent, store.ErrConflict)
	if g := get(t, tb, "P", "a"); g.Rev != 1 || string(g.Data) != string(doc("1")) {
		t.Fatalf("failed put changed the item: %+v", g)
	}
}

func testPutIfRev(t *testing.T, tb store.Table) {
	if got := put(t, tb, it("P", "a", "1"), ifRev(0)); got.Rev != 1 {
		t.Fatalf("IfRev 0 on absent: rev %d", got.Rev)
	}
	putErr(t, tb, it("P", "a", "x"), ifRev(0), store.ErrConflict)
	putErr(t, tb, it("P", "a", "x"), ifRev(5), store.ErrConflict)
	putErr(t, tb, it("P", "missing", "x"), ifRev(1), store.ErrConflict)
	absent(t, tb, "P", "missing")
	if got := put(t, tb, it("P", "a", "2"), ifRev(1)); got.Rev != 2 {
		t.Fatalf("IfRev 1: rev %d", got.Rev)
	}
	putErr(t, tb, it("P", "a", "x"), ifRev(1), store.ErrConflict)
	if got := put(t, tb, it("P", "a", "3"), ifRev(2)); got.Rev != 3 {
		t.Fatalf("IfRev 2: rev %d", got.Rev)
	}
	if g := get(t, tb, "P", "a"); string(g.Data) != string(doc("3")) {
		t.Fatalf("data %s", g.Data)
	}
}

func testPutIfExists(t *testing.T, tb store.Table) {
	putErr(t, tb, it("P", "a", "1"), ifExists, store.ErrConflict)
	absent(t, tb, "P", "a")
	put(t, tb, it("P", "a", "1"), always)
	if got := put(t, tb, it("P", "a", "2"), ifExists); got.Rev != 2 {
		t.Fatalf("rev %d", got.Rev)
	}
}

func testExpiredInvisible(t *testing.T, tb store.Table) {
	old := it("P", "old", "1")
	old.Expires = past()
	put(t, tb, old, always)
	live := it("P", "live", "1")
	live.Expires = future()
	put(t, tb, live, always)
	put(t, tb, it("P", "never", "1"), always)

	absent(t, tb, "P", "old")
	if g := get(t, tb, "P", "live"); g.Expires != live.Expires {
		t.Fatalf("live item: %+v", g)
	}
	wantSKs(t, tb, store.Query{PK: "P"}, "live", "never")
	wantSKs(t, tb, store.Query{PK: "P", Desc: true}, "never", "live")
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "o"})

	// IfAbsent succeeds over an expired item and starts it over at Rev 1.
	if got := put(t, tb, it("P", "old", "2"), ifAbsent); got.Rev != 1 || got.Expires != 0 {
		t.Fatalf("IfAbsent over expired: %+v, want rev 1", got)
	}
	if g := get(t, tb, "P", "old"); string(g.Data) != string(doc("2")) || g.Rev != 1 {
		t.Fatalf("get after recreate: %+v", g)
	}
	wantSKs(t, tb, store.Query{PK: "P"}, "live", "never", "old")

	// An item that expires while in use becomes absent too.
	soon := it("P", "soon", "1")
	soon.Expires = time.Now().Unix() + 1
	put(t, tb, soon, always)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := tb.Get(ctx(t), "P", "soon")
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("item with expiry 1s ahead still visible after 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func testExpiredConditions(t *testing.T, tb store.Table) {
	mk := func(sk string) {
		x := it("P", sk, "old")
		x.Expires = past()
		put(t, tb, x, always)
		put(t, tb, x, always) // a put over an expired item starts over too
	}
	for _, sk := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		mk(sk)
	}
	putErr(t, tb, it("P", "a", "x"), ifExists, store.ErrConflict)
	putErr(t, tb, it("P", "a", "x"), ifRev(1), store.ErrConflict)
	putErr(t, tb, it("P", "a", "x"), ifRev(2), store.ErrConflict)
	if got := put(t, tb, it("P", "b", "new"), ifRev(0)); got.Rev != 1 {
		t.Fatalf("IfRev 0 over expired: rev %d, want 1", got.Rev)
	}
	if got := put(t, tb, it("P", "c", "new"), always); got.Rev != 1 || got.N != 0 {
		t.Fatalf("Always over expired: %+v, want rev 1", got)
	}
	if err := tb.Delete(ctx(t), "P", "d", ifExists); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete IfExists of expired: %v, want ErrConflict", err)
	}
	if err := tb.Delete(ctx(t), "P", "d", ifAbsent); err != nil {
		t.Fatalf("delete IfAbsent of expired: %v", err)
	}
	if err := tb.Delete(ctx(t), "P", "e", ifRev(2)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete IfRev 2 of expired: %v, want ErrConflict", err)
	}
	if err := tb.Delete(ctx(t), "P", "e", always); err != nil {
		t.Fatalf("delete Always of expired: %v", err)
	}
	absent(t, tb, "P", "e")
	// transaction conditions see the same
	transactErr(t, tb, []store.Op{{Kind: store.OpCheck, Item: store.Item{PK: "P", SK: "f"}, Cond: ifExists}}, store.ErrConflict)
	transactErr(t, tb, []store.Op{
		{Kind: store.OpCheck, Item: store.Item{PK: "P", SK: "f"}, Cond: ifAbsent},
		{Kind: store.OpPut, Item: it("P", "g", "new"), Cond: ifAbsent},
	}, nil)
	if g := get(t, tb, "P", "g"); g.Rev != 1 {
		t.Fatalf("transact put over expired: rev %d, want 1", g.Rev)
	}
}

func testQueryPrefixOrder(t *testing.T, tb store.Table) {
	for _, sk := range []string{"B#2", "A#3", "A#1", "B#1", "A#2", "A#10", "C", "Z~", "Z\u00ff"} {
		put(t, tb, it("P", sk, sk), always)
	}
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "A#"}, "A#1", "A#10", "A#2", "A#3")
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "A#", Desc: true}, "A#3", "A#2", "A#10", "A#1")
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "A#", Limit: 2}, "A#1", "A#10")
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "A#", Desc: true, Limit: 2}, "A#3", "A#2")
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "B#", Desc: true}, "B#2", "B#1")
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "A#1"}, "A#1", "A#10")
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "D"})
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "D", Desc: true})
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "Z", Desc: true}, "Z\u00ff", "Z~")
	wantSKs(t, tb, store.Query{PK: "P"}, "A#1", "A#10", "A#2", "A#3", "B#1", "B#2", "C", "Z~", "Z\u00ff")
	wantSKs(t, tb, store.Query{PK: "P", Desc: true, Limit: 3}, "Z\u00ff", "Z~", "C")
	wantSKs(t, tb, store.Query{PK: "P", Limit: 100}, "A#1", "A#10", "A#2", "A#3", "B#1", "B#2", "C", "Z~", "Z\u00ff")
	wantSKs(t, tb, store.Query{PK: "nothing"})
	wantSKs(t, tb, store.Query{PK: "nothing", Desc: true, Limit: 1})

	items, err := tb.Query(ctx(t), store.Query{PK: "P", Prefix: "C"})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Rev != 1 || string(items[0].Data) != string(doc("C")) || items[0].PK != "P" {
		t.Fatalf("query returned %+v", items)
	}
}

func testQueryPartitionsDistinct(t *testing.T, tb store.Table) {
	// Partitions whose names are prefixes of each other never mix.
	put(t, tb, it("A", "BC", "1"), always)
	put(t, tb, it("AB", "C", "2"), always)
	put(t, tb, it("A#1", "x", "3"), always)
	put(t, tb, it("A", "#1x", "4"), always)
	wantSKs(t, tb, store.Query{PK: "A"}, "#1x", "BC")
	wantSKs(t, tb, store.Query{PK: "A", Desc: true}, "BC", "#1x")
	wantSKs(t, tb, store.Query{PK: "AB"}, "C")
	wantSKs(t, tb, store.Query{PK: "AB", Desc: true}, "C")
	wantSKs(t, tb, store.Query{PK: "A#1"}, "x")
	if g := get(t, tb, "AB", "C"); string(g.Data) != string(doc("2")) {
		t.Fatalf("AB/C = %s", g.Data)
	}
	absent(t, tb, "A", "B")
}

func testQueryLimitSkipsExpired(t *testing.T, tb store.Table) {
	expired := map[int]bool{2: true, 3: true, 4: true, 5: true, 7: true, 9: true}
	for i := 1; i <= 10; i++ {
		x := it("P", fmt.Sprintf("E#%02d", i), "v")
		if expired[i] {
			x.Expires = past()
		}
		put(t, tb, x, always)
	}
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "E#", Limit: 3}, "E#01", "E#06", "E#08")
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "E#", Limit: 1}, "E#01")
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "E#", Desc: true, Limit: 3}, "E#10", "E#08", "E#06")
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "E#", Limit: 10}, "E#01", "E#06", "E#08", "E#10")
	wantSKs(t, tb, store.Query{PK: "P", Prefix: "E#0", Desc: true, Limit: 2}, "E#08", "E#06")

	// a long run of expired items before the first live one
	for i := range 40 {
		x := it("Q", fmt.Sprintf("%03d", i), "v")
		x.Expires = past()
		put(t, tb, x, always)
	}
	put(t, tb, it("Q", "100", "v"), always)
	wantSKs(t, tb, store.Query{PK: "Q", Limit: 1}, "100")
	wantSKs(t, tb, store.Query{PK: "Q", Limit: 2, Desc: true}, "100")
}

func testQueryPaginates(t *testing.T, tb store.Table) {
	// ~3 MB in one partition: more than one DynamoDB page (1 MB each).
	data := bytes.Repeat([]byte("x"), 100*1024)
	doc := append(append([]byte(`{"v":"`), data...), `"}`...)
	var want []string
	for i := range 30 {
		sk := fmt.Sprintf("%03d", i)
		want = append(want, sk)
		put(t, tb, store.Item{PK: "P", SK: sk, Data: doc}, always)
	}
	wantSKs(t, tb, store.Query{PK: "P"}, want...)
	wantSKs(t, tb, store.Query{PK: "P", Limit: 25}, want[:25]...)
	rev := slices.Clone(want)
	slices.Reverse(rev)
	wantSKs(t, tb, store.Query{PK: "P", Desc: true}, rev...)
}

func testAdd(t *testing.T, tb store.Table) {
	if n := add(t, tb, "C", "n", 5, 0); n != 5 {
		t.Fatalf("first add = %d, want 5", n)
	}
	g := get(t, tb, "C", "n")
	if g.N != 5 || g.Rev != 1 || len(g.Data) != 0 || g.Expires != 0 {
		t.Fatalf("counter item %+v, want N 5 Rev 1", g)
	}
	exp := future()
	if n := add(t, tb, "C", "n", -2, exp); n != 3 {
		t.Fatalf("second add = %d, want 3", n)
	}
	if g = get(t, tb, "C", "n"); g.N != 3 || g.Expires != exp || g.Rev != 1 {
		t.Fatalf("counter item %+v, want N 3, expires set, rev unchanged", g)
	}
	if n := add(t, tb, "C", "n", 0, 0); n != 3 {
		t.Fatalf("add 0 = %d", n)
	}
	if g = get(t, tb, "C", "n"); g.Expires != 0 {
		t.Fatalf("add with expires 0 left expiry %d", g.Expires)
	}
	// a put onto a live counter keeps the counter; an add keeps the document
	if p := put(t, tb, it("C", "n", "doc"), always); p.Rev != 2 || p.N != 3 {
		t.Fatalf("put onto counter: %+v, want rev 2, N 3", p)
	}
	if n := add(t, tb, "C", "n", 10, 0); n != 13 {
		t.Fatalf("add after put = %d", n)
	}
	if g = get(t, tb, "C", "n"); g.N != 13 || g.Rev != 2 || string(g.Data) != string(doc("doc")) {
		t.Fatalf("after add: %+v", g)
	}
	// a counter item counts as present for conditions
	putErr(t, tb, it("C", "m", "x"), ifExists, store.ErrConflict)
	add(t, tb, "C", "m", 1, 0)
	putErr(t, tb, it("C", "m", "x"), ifAbsent, store.ErrConflict)
	wantSKs(t, tb, store.Query{PK: "C"}, "m", "n")
}

func testAddExpired(t *testing.T, tb store.Table) {
	add(t, tb, "C", "n", 7, past())
	absent(t, tb, "C", "n")
	if n := add(t, tb, "C", "n", 2, 0); n != 2 {
		t.Fatalf("add onto expired counter = %d, want 2 (starts over)", n)
	}
	if g := get(t, tb, "C", "n"); g.Rev != 1 || g.N != 2 {
		t.Fatalf("%+v", g)
	}
	// an expired document does not lend its data to a new counter
	x := it("C", "d", "old")
	x.Expires = past()
	put(t, tb, x, always)
	add(t, tb, "C", "d", 1, 0)
	if g := get(t, tb, "C", "d"); len(g.Data) != 0 || g.N != 1 || g.Rev != 1 {
		t.Fatalf("counter over expired doc: %+v", g)
	}
	// and an expired counter does not lend its count to a new document
	add(t, tb, "C", "e", 9, past())
	if p := put(t, tb, it("C", "e", "new"), always); p.N != 0 || p.Rev != 1 {
		t.Fatalf("put over expired counter: %+v", p)
	}
}

func testAddConcurrent(t *testing.T, tb store.Table) {
	const workers, each = 8, 25
	var wg sync.WaitGroup
	results := make(chan int64, workers*each)
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				n, err := tb.Add(ctx(t), "C", "hits", 1, future())
				if err != nil {
					errs <- err
					return
				}
				results <- n
			}
		})
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for n := range results {
		if seen[n] {
			t.Fatalf("two adds returned the same value %d", n)
		}
		seen[n] = true
	}
	if g := get(t, tb, "C", "hits"); g.N != workers*each {
		t.Fatalf("counter = %d, want %d", g.N, workers*each)
	}
	for i := int64(1); i <= workers*each; i++ {
		if !seen[i] {
			t.Fatalf("no add returned %d", i)
		}
	}
}

func testIfRevConcurrent(t *testing.T, tb store.Table) {
	const writers, rounds = 8, 5
	put(t, tb, it("P", "doc", "0"), always)
	for round := range rounds {
		rev := get(t, tb, "P", "doc").Rev
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range writers {
			wg.Go(func() {
				<-start
				_, err := tb.Put(ctx(t), it("P", "doc", fmt.Sprintf("%d-%d", round, w)), ifRev(rev))
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, store.ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("writer %d: %v", w, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != writers-1 {
			t.Fatalf("round %d: %d winners, %d conflicts; want 1 and %d", round, wins.Load(), conflicts.Load(), writers-1)
		}
		if g := get(t, tb, "P", "doc"); g.Rev != rev+1 {
			t.Fatalf("round %d: rev %d, want %d", round, g.Rev, rev+1)
		}
	}
}

func testDelete(t *testing.T, tb store.Table) {
	if err := tb.Delete(ctx(t), "P", "missing", ifExists); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete IfExists of missing: %v", err)
	}
	if err := tb.Delete(ctx(t), "P", "missing", always); err != nil {
		t.Fatalf("delete Always of missing: %v", err)
	}
	if err := tb.Delete(ctx(t), "P", "missing", ifRev(1)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete IfRev 1 of missing: %v", err)
	}
	put(t, tb, it("P", "a", "1"), always)
	put(t, tb, it("P", "a", "2"), always)
	if err := tb.Delete(ctx(t), "P", "a", ifRev(1)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete with stale rev: %v", err)
	}
	if err := tb.Delete(ctx(t), "P", "a", ifAbsent); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete IfAbsent of live item: %v", err)
	}
	get(t, tb, "P", "a")
	if err := tb.Delete(ctx(t), "P", "a", ifRev(2)); err != nil {
		t.Fatalf("delete with current rev: %v", err)
	}
	absent(t, tb, "P", "a")
	put(t, tb, it("P", "b", "1"), always)
	if err := tb.Delete(ctx(t), "P", "b", ifExists); err != nil {
		t.Fatal(err)
	}
	put(t, tb, it("P", "c", "1"), always)
	if err := tb.Delete(ctx(t), "P", "c", always); err != nil {
		t.Fatal(err)
	}
	wantSKs(t, tb, store.Query{PK: "P"})
	// recreated after delete: starts at rev 1
	if got := put(t, tb, it("P", "a", "3"), ifAbsent); got.Rev != 1 {
		t.Fatalf("recreated rev %d", got.Rev)
	}
}

func testTransactAllOrNothing(t *testing.T, tb store.Table) {
	put(t, tb, it("T", "b", "old"), always)
	put(t, tb, it("T", "del", "keep"), always)
	transactErr(t, tb, []store.Op{
		{Kind: store.OpPut, Item: it("T", "a", "new"), Cond: ifAbsent},
		{Kind: store.OpPut, Item: it("T", "c", "new"), Cond: always},
		{Kind: store.OpDelete, Item: store.Item{PK: "T", SK: "del"}, Cond: always},
		{Kind: store.OpPut, Item: it("T", "b", "new"), Cond: ifAbsent}, // fails
	}, store.ErrConflict)
	absent(t, tb, "T", "a")
	absent(t, tb, "T", "c")
	get(t, tb, "T", "del")
	if g := get(t, tb, "T", "b"); g.Rev != 1 || string(g.Data) != string(doc("old")) {
		t.Fatalf("b changed by failed transaction: %+v", g)
	}

	transactErr(t, tb, []store.Op{
		{Kind: store.OpPut, Item: it("T", "a", "new"), Cond: ifAbsent},
		{Kind: store.OpPut, Item: it("T", "b", "new"), Cond: ifRev(1)},
		{Kind: store.OpPut, Item: it("T", "c", "new"), Cond: ifRev(0)},
		{Kind: store.OpDelete, Item: store.Item{PK: "T", SK: "del"}, Cond: ifExists},
		{Kind: store.OpDelete, Item: store.Item{PK: "T", SK: "never-was"}, Cond: always},
	}, nil)
	if g := get(t, tb, "T", "a"); g.Rev != 1 || string(g.Data) != string(doc("new")) {
		t.Fatalf("a: %+v", g)
	}
	if g := get(t, tb, "T", "b"); g.Rev != 2 || string(g.Data) != string(doc("new")) {
		t.Fatalf("b: %+v", g)
	}
	get(t, tb, "T", "c")
	absent(t, tb, "T", "del")

	// expiry is carried by transactional puts
	x := it("T", "x", "v")
	x.Expires = past()
	y := it("T", "y", "v")
	y.Expires = future()
	transactErr(t, tb, []store.Op{{Kind: store.OpPut, Item: x, Cond: ifAbsent}, {Kind: store.OpPut, Item: y, Cond: ifAbsent}}, nil)
	absent(t, tb, "T", "x")
	if g := get(t, tb, "T", "y"); g.Expires != y.Expires {
		t.Fatalf("y expires %d, want %d", g.Expires, y.Expires)
	}
}

func testTransactCheck(t *testing.T, tb store.Table) {
	put(t, tb, it("T", "guard", "1"), always)
	transactErr(t, tb, []store.Op{
		{Kind: store.OpCheck, Item: store.Item{PK: "T", SK: "guard"}, Cond: ifRev(1)},
		{Kind: store.OpPut, Item: it("T", "y", "1"), Cond: ifAbsent},
	}, nil)
	get(t, tb, "T", "y")
	if g := get(t, tb, "T", "guard"); g.Rev != 1 {
		t.Fatalf("check changed the guarded item: rev %d", g.Rev)
	}
	put(t, tb, it("T", "guard", "2"), always)
	transactErr(t, tb, []store.Op{
		{Kind: store.OpCheck, Item: store.Item{PK: "T", SK: "guard"}, Cond: ifRev(1)},
		{Kind: store.OpPut, Item: it("T", "z", "1"), Cond: ifAbsent},
	}, store.ErrConflict)
	absent(t, tb, "T", "z")
	transactErr(t, tb, []store.Op{
		{Kind: store.OpPut, Item: it("T", "z", "1"), Cond: always},
		{Kind: store.OpCheck, Item: store.Item{PK: "T", SK: "missing"}, Cond: ifExists},
	}, store.ErrConflict)
	absent(t, tb, "T", "z")
	transactErr(t, tb, []store.Op{
		{Kind: store.OpCheck, Item: store.Item{PK: "T", SK: "missing"}, Cond: ifAbsent},
		{Kind: store.OpCheck, Item: store.Item{PK: "T", SK: "guard"}, Cond: ifExists},
		{Kind: store.OpCheck, Item: store.Item{PK: "T", SK: "any"}, Cond: always},
		{Kind: store.OpPut, Item: it("T", "z", "1"), Cond: always},
	}, nil)
	get(t, tb, "T", "z")
	// only unconditional checks: nothing to do, no error
	transactErr(t, tb, []store.Op{{Kind: store.OpCheck, Item: store.Item{PK: "T", SK: "any"}, Cond: always}}, nil)
}

func testTransactDelete(t *testing.T, tb store.Table) {
	put(t, tb, it("T", "a", "1"), always)
	put(t, tb, it("T", "b", "1"), always)
	transactErr(t, tb, []store.Op{
		{Kind: store.OpDelete, Item: store.Item{PK: "T", SK: "a"}, Cond: ifRev(1)},
		{Kind: store.OpDelete, Item: store.Item{PK: "T", SK: "b"}, Cond: ifRev(7)},
	}, store.ErrConflict)
	get(t, tb, "T", "a")
	get(t, tb, "T", "b")
	transactErr(t, tb, []store.Op{
		{Kind: store.OpDelete, Item: store.Item{PK: "T", SK: "a"}, Cond: ifRev(1)},
		{Kind: store.OpDelete, Item: store.Item{PK: "T", SK: "b"}, Cond: ifExists},
		{Kind: store.OpDelete, Item: store.Item{PK: "T", SK: "c"}, Cond: ifAbsent},
	}, nil)
	absent(t, tb, "T", "a")
	absent(t, tb, "T", "b")
}

func testTransactUnconditionalPut(t *testing.T, tb store.Table) {
	put(t, tb, it("T", "live", "1"), always)
	put(t, tb, it("T", "live", "2"), always)
	x := it("T", "expired", "1")
	x.Expires = past()
	put(t, tb, x, always)
	put(t, tb, x, always)
	add(t, tb, "T", "counter", 4, 0)
	for range 2 { // the second round finds every item live
		transactErr(t, tb, []store.Op{
			{Kind: store.OpPut, Item: it("T", "live", "tx"), Cond: always},
			{Kind: store.OpPut, Item: it("T", "expired", "tx"), Cond: always},
			{Kind: store.OpPut, Item: it("T", "new", "tx"), Cond: always},
			{Kind: store.OpPut, Item: it("T", "counter", "tx"), Cond: always},
		}, nil)
	}
	for sk, want := range map[string]int64{"live": 4, "expired": 2, "new": 2, "counter": 3} {
		if g := get(t, tb, "T", sk); g.Rev != want || string(g.Data) != string(doc("tx")) {
			t.Errorf("%s: rev %d data %s, want rev %d", sk, g.Rev, g.Data, want)
		}
	}
	if g := get(t, tb, "T", "counter"); g.N != 4 {
		t.Errorf("transactional put lost the counter: %d", g.N)
	}
}

func addOp(pk, sk string, delta, exp int64) store.Op {
	return store.Op{Kind: store.OpAdd, Item: store.Item{PK: pk, SK: sk, N: delta, Expires: exp}}
}

// testTransactAdd: a counter add inside a transaction behaves as Table.Add (create,
// accumulate, start over when expired, keep the document) and is undone with the rest
// when another op's condition fails.
func testTransactAdd(t *testing.T, tb store.Table) {
	put(t, tb, it("T", "doc", "d"), always)
	add(t, tb, "T", "live", 4, 0)
	add(t, tb, "T", "expired", 9, past())
	x := it("T", "expired-doc", "old")
	x.Expires = past()
	put(t, tb, x, always)
	exp := future()
	transactErr(t, tb, []store.Op{
		{Kind: store.OpPut, Item: it("T", "guard", "1"), Cond: ifAbsent},
		addOp("T", "new", 2, 0),
		addOp("T", "live", -1, exp),
		addOp("T", "expired", 5, 0),
		addOp("T", "expired-doc", 1, 0),
		addOp("T", "doc", 3, 0),
	}, nil)
	for sk, want := range map[string]store.Item{
		"new":         {N: 2, Rev: 1},
		"live":        {N: 3, Rev: 1, Expires: exp},
		"expired":     {N: 5, Rev: 1},
		"expired-doc": {N: 1, Rev: 1},
		"doc":         {N: 3, Rev: 1, Data: doc("d")},
	} {
		g := get(t, tb, "T", sk)
		if g.N != want.N || g.Rev != want.Rev || g.Expires != want.Expires || string(g.Data) != string(want.Data) {
			t.Errorf("%s: %+v, want N %d rev %d expires %d data %s", sk, g, want.N, want.Rev, want.Expires, want.Data)
		}
	}
	// A failing condition undoes the adds too.
	transactErr(t, tb, []store.Op{
		addOp("T", "live", 100, 0),
		addOp("T", "other", 100, 0),
		{Kind: store.OpPut, Item: it("T", "guard", "2"), Cond: ifRev(7)},
	}, store.ErrConflict)
	if g := get(t, tb, "T", "live"); g.N != 3 {
		t.Errorf("failed transaction moved a counter: %+v", g)
	}
	absent(t, tb, "T", "other")
	// Conditional adds are not part of the contract.
	bad := addOp("T", "live", 1, 0)
	bad.Cond = ifExists
	if err := tb.Transact(ctx(t), []store.Op{bad}); err == nil || errors.Is(err, store.ErrConflict) {
		t.Fatalf("conditional add: %v, want a non-conflict error", err)
	}
}

func testTransactLimits(t *testing.T, tb store.Table) {
	transactErr(t, tb, nil, nil)
	var ops []store.Op
	for i := range store.MaxTransactOps + 1 {
		ops = append(ops, store.Op{Kind: store.OpPut, Item: it("T", fmt.Sprintf("%02d", i), "v"), Cond: ifAbsent})
	}
	err := tb.Transact(ctx(t), ops)
	if err == nil || errors.Is(err, store.ErrConflict) {
		t.Fatalf("transact with %d ops: %v, want a non-conflict error", len(ops), err)
	}
	wantSKs(t, tb, store.Query{PK: "T"})
	dup := []store.Op{
		{Kind: store.OpPut, Item: it("T", "a", "1"), Cond: ifAbsent},
		{Kind: store.OpCheck, Item: store.Item{PK: "T", SK: "a"}, Cond: ifAbsent},
	}
	if err := tb.Transact(ctx(t), dup); err == nil || errors.Is(err, store.ErrConflict) {
		t.Fatalf("transact with two ops on one item: %v, want a non-conflict error", err)
	}
	absent(t, tb, "T", "a")
	transactErr(t, tb, ops[:store.MaxTransactOps], nil)
	if got := query(t, tb, store.Query{PK: "T"}); len(got) != store.MaxTransactOps {
		t.Fatalf("%d items after a %d-op transaction", len(got), store.MaxTransactOps)
	}
}

func testKeysAndData(t *testing.T, tb store.Table) {
	for _, bad := range []store.Item{{PK: "", SK: "a", Data: doc("x")}, {PK: "a", SK: "", Data: doc("x")}} {
		if _, err := tb.Put(ctx(t), bad, always); err == nil || errors.Is(err, store.ErrConflict) {
			t.Fatalf("put with empty key %q/%q: %v, want an error", bad.PK, bad.SK, err)
		}
		if _, err := tb.Add(ctx(t), bad.PK, bad.SK, 1, 0); err == nil {
			t.Fatalf("add with empty key %q/%q: no error", bad.PK, bad.SK)
		}
	}
	odd := []string{"APP#my.app#x", "ünï#cødé 🚀", "a/b\\c", strings.Repeat("k", 500)}
	for i, k := range odd {
		data := []byte(fmt.Sprintf(`{"i":%d,"s":"\u00e9\n\"q\"","b":[1,2,3]}`, i))
		put(t, tb, store.Item{PK: k, SK: k, Data: data}, always)
		if g := get(t, tb, k, k); !bytes.Equal(g.Data, data) || g.PK != k || g.SK != k {
			t.Fatalf("round trip of %q: %+v", k, g)
		}
		wantSKs(t, tb, store.Query{PK: k}, k)
	}
	// empty data is allowed and reads back empty
	put(t, tb, store.Item{PK: "E", SK: "e"}, always)
	if g := get(t, tb, "E", "e"); len(g.Data) != 0 || g.Rev != 1 {
		t.Fatalf("empty data item: %+v", g)
	}
	// the caller's buffer is not retained
	buf := []byte(`{"v":1}`)
	put(t, tb, store.Item{PK: "E", SK: "buf", Data: buf}, always)
	buf[6] = '2'
	if g := get(t, tb, "E", "buf"); string(g.Data) != `{"v":1}` {
		t.Fatalf("stored data changed with the caller's buffer: %s", g.Data)
	}
}

func testItemSize(t *testing.T, tb store.Table) {
	big := func(n int) []byte { return append(append([]byte(`{"v":"`), bytes.Repeat([]byte("b"), n)...), `"}`...) }
	put(t, tb, store.Item{PK: "S", SK: "ok", Data: big(300 * 1024)}, always)
	if g := get(t, tb, "S", "ok"); len(g.Data) != 300*1024+8 {
		t.Fatalf("300 KiB item read back as %d bytes", len(g.Data))
	}
	_, err := tb.Put(ctx(t), store.Item{PK: "S", SK: "big", Data: big(500 * 1024)}, always)
	if err == nil || errors.Is(err, store.ErrConflict) {
		t.Fatalf("500 KiB item: %v, want a size error (DynamoDB's limit is 400 KB)", err)
	}
	absent(t, tb, "S", "big")
}

// ---- typed layer (store.Store) over the table

func testStoreApps(t *testing.T, tb store.Table) {
	s := store.New(tb)
	now := time.Now().UTC().Truncate(time.Millisecond)
	a := release.App{ID: "com.example.b", Name: "B", DefaultChannel: "production", CreatedAt: now}
	if err := s.CreateApp(ctx(t), a); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApp(ctx(t), a); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second CreateApp: %v, want ErrExists", err)
	}
	if err := s.CreateApp(ctx(t), release.App{ID: "com.example.a", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetApp(ctx(t), a.ID)
	if err != nil || got.Name != "B" || !got.CreatedAt.Equal(now) {
		t.Fatalf("GetApp = %+v, %v", got, err)
	}
	if _, err := s.GetApp(ctx(t), "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetApp(missing): %v", err)
	}
	apps, err := s.ListApps(ctx(t))
	if err != nil || len(apps) != 2 || apps[0].ID != "com.example.a" || apps[1].ID != "com.example.b" {
		t.Fatalf("ListApps = %+v, %v", apps, err)
	}
	if _, err := s.UpdateApp(ctx(t), "nope", func(*release.App) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateApp(missing): %v", err)
	}
	if _, err := s.UpdateApp(ctx(t), a.ID, func(a *release.App) error { a.Name = "B2"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetApp(ctx(t), a.ID); got.Name != "B2" {
		t.Fatalf("name after update: %q", got.Name)
	}
}

func testStoreReleases(t *testing.T, tb store.Table) {
	s := store.New(tb)
	t0 := time.Now().UTC().Truncate(time.Second)
	for i, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		r := release.Release{AppID: "app", Version: v, ID: "r" + v, Status: release.StatusPending,
			BuildNumber: int64(i + 1), CreatedAt: t0.Add(time.Duration(i) * time.Minute)}
		if err := s.CreateRelease(ctx(t), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateRelease(ctx(t), release.Release{AppID: "app", Version: "1.1.0"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate release: %v, want ErrExists", err)
	}
	rs, err := s.ListReleases(ctx(t), "app")
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, r := range rs {
		vs = append(vs, r.Version)
	}
	if !slices.Equal(vs, []string{"1.2.0", "1.1.0", "1.0.0"}) {
		t.Fatalf("ListReleases order %v, want newest first", vs)
	}
	if rs, _ := s.ListReleases(ctx(t), "other"); len(rs) != 0 {
		t.Fatalf("other app has releases: %+v", rs)
	}
	up, err := s.UpdateRelease(ctx(t), "app", "1.1.0", func(r *release.Release) error {
		r.Status = release.StatusReady
		r.SHA256 = "abc"
		return nil
	})
	if err != nil || up.Status != release.StatusReady {
		t.Fatalf("UpdateRelease = %+v, %v", up, err)
	}
	got, err := s.GetRelease(ctx(t), "app", "1.1.0")
	if err != nil || got.Status != release.StatusReady || got.SHA256 != "abc" || got.ID != "r1.1.0" {
		t.Fatalf("GetRelease = %+v, %v", got, err)
	}
	if _, err := s.UpdateRelease(ctx(t), "app", "9.9.9", func(*release.Release) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateRelease(missing): %v", err)
	}
	if err := s.DeleteRelease(ctx(t), "app", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRelease(ctx(t), "app", "1.0.0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted release: %v", err)
	}
	if rs, _ := s.ListReleases(ctx(t), "app"); len(rs) != 2 {
		t.Fatalf("%d releases after delete", len(rs))
	}
}

func testStoreChannelConcurrent(t *testing.T, tb store.Table) {
	s := store.New(tb)
	const writers = 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			_, err := s.UpdateChannel(ctx(t), "app", "production", fmt.Sprintf("key_%d", w), "bump",
				func(c *release.Channel, exists bool) error {
					c.Policy.MinAttempts++
					c.Stable = fmt.Sprintf("1.0.%d", w)
					return nil
				})
			if err != nil {
				t.Errorf("writer %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ch, err := s.GetChannel(ctx(t), "app", "production")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Policy.MinAttempts != writers {
		t.Fatalf("channel saw %d of %d updates", ch.Policy.MinAttempts, writers)
	}
	if ch.ID < 1 || ch.AppID != "app" || ch.Name != "production" {
		t.Fatalf("channel %+v", ch)
	}
	hist, err := s.ChannelHistory(ctx(t), "app", "production", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != writers {
		t.Fatalf("%d history entries, want %d", len(hist), writers)
	}
	if hist[0].Channel.Policy.MinAttempts != writers || hist[0].Channel.Stable != ch.Stable {
		t.Fatalf("newest history entry %+v disagrees with channel %+v", hist[0].Channel, ch)
	}
	for i := 1; i < len(hist); i++ {
		if hist[i].At.After(hist[i-1].At) || hist[i].Channel.Policy.MinAttempts != hist[i-1].Channel.Policy.MinAttempts-1 {
			t.Fatalf("history not newest first / not one entry per update at %d: %+v then %+v", i, hist[i-1], hist[i])
		}
	}
	if h, _ := s.ChannelHistory(ctx(t), "app", "production", 3); len(h) != 3 || !h[0].At.Equal(hist[0].At) {
		t.Fatalf("history limit 3: %d entries", len(h))
	}
	chs, err := s.ListChannels(ctx(t), "app")
	if err != nil || len(chs) != 1 {
		t.Fatalf("ListChannels = %+v, %v (history must not be listed as channels)", chs, err)
	}
	// a second channel's history is separate even though the names share a prefix
	if _, err := s.UpdateChannel(ctx(t), "app", "production-eu", "k", "create", func(*release.Channel, bool) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.ChannelHistory(ctx(t), "app", "production", 0); len(h) != writers {
		t.Fatalf("history of production has %d entries after creating production-eu", len(h))
	}
	if err := s.DeleteChannel(ctx(t), "app", "production"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetChannel(ctx(t), "app", "production"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted channel: %v", err)
	}
}

// testStoreChannelChangesOnly: a channel write that changes nothing appends no
// history (re-running `ota release --channel` must not push the previous stable
// release out of the history a rollback reads) and leaves the channel as it was.
func testStoreChannelChangesOnly(t *testing.T, tb store.Table) {
	s := store.New(tb)
	set := func(fn func(c *release.Channel)) release.Channel {
		t.Helper()
		c, err := s.UpdateChannel(ctx(t), "app", "production", "k", "channel.set", func(c *release.Channel, _ bool) error {
			fn(c)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	entries := func(want int) {
		t.Helper()
		hist, err := s.ChannelHistory(ctx(t), "app", "production", 0)
		if err != nil || len(hist) != want {
			t.Fatalf("history has %d entries (%v), want %d", len(hist), err, want)
		}
	}
	set(func(*release.Channel) {}) // creating is a change, even with nothing set
	entries(1)
	v1 := set(func(c *release.Channel) { c.Stable = "1.0.0" })
	entries(2)
	for range 3 {
		if c := set(func(c *release.Channel) { c.Stable = "1.0.0" }); !c.UpdatedAt.Equal(v1.UpdatedAt) || c.Stable != "1.0.0" {
			t.Fatalf("no-op write returned %+v, want the channel as it was (%+v)", c, v1)
		}
		set(func(*release.Channel) {})
	}
	entries(2)
	set(func(c *release.Channel) { c.Rolling = &release.Rollout{Version: "1.0.1", Percent: 10, Salt: "s"} })
	entries(3)
	set(func(c *release.Channel) { c.Rolling.Percent = 10 }) // same percentage, through the pointer
	entries(3)
	set(func(c *release.Channel) { c.Rolling.Percent = 20 })
	entries(4)
	if ch, err := s.GetChannel(ctx(t), "app", "production"); err != nil || ch.Rolling == nil || ch.Rolling.Percent != 20 {
		t.Fatalf("channel %+v, %v", ch, err)
	}
}

func testStoreDevice(t *testing.T, tb store.Table) {
	t0 := time.Now()
	s := store.New(tb).WithClock(func() time.Time { return t0 })
	until := t0.Add(time.Hour).Unix()
	d, err := s.UpdateDevice(ctx(t), "app", "dev1", func(d *release.Device) error {
		d.Version = "1.0.0"
		if d.Failed == nil {
			d.Failed = map[string]int64{}
		}
		d.Failed["1.1.0"] = until
		return nil
	})
	if err != nil || d.AppID != "app" || d.ID != "dev1" {
		t.Fatalf("UpdateDevice = %+v, %v", d, err)
	}
	got, err := s.GetDevice(ctx(t), "app", "dev1")
	if err != nil || !got.FailedRecently("1.1.0", t0) || got.Version != "1.0.0" {
		t.Fatalf("device %+v, %v: want failure memory for 1.1.0", got, err)
	}
	// two hours later the failure memory is dropped on the next write
	later := s.WithClock(func() time.Time { return t0.Add(2 * time.Hour) })
	if got.FailedRecently("1.1.0", t0.Add(2*time.Hour)) {
		t.Fatal("failure memory not expired two hours later")
	}
	if _, err := later.UpdateDevice(ctx(t), "app", "dev1", func(*release.Device) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ = later.GetDevice(ctx(t), "app", "dev1"); len(got.Failed) != 0 || got.Version != "1.0.0" {
		t.Fatalf("after expiry: %+v, want no failure memory and the version kept", got)
	}
	// a device record idle past DeviceTTL is gone, and a new one starts empty
	idle := s.WithClock(func() time.Time { return time.Now().Add(-store.DeviceTTL - time.Hour) })
	if _, err := idle.UpdateDevice(ctx(t), "app", "dev2", func(d *release.Device) error {
		d.Failed = map[string]int64{"2.0.0": time.Now().Add(time.Hour).Unix()}
		d.Channel = "beta"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDevice(ctx(t), "app", "dev2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("idle device: %v, want ErrNotFound", err)
	}
	fresh, err := s.UpdateDevice(ctx(t), "app", "dev2", func(*release.Device) error { return nil })
	if err != nil || fresh.Channel != "" || len(fresh.Failed) != 0 {
		t.Fatalf("recreated device %+v, %v: want empty", fresh, err)
	}
}

func testStoreDeviceChannel(t *testing.T, tb store.Table) {
	s := store.New(tb)
	count := func(want int64) {
		t.Helper()
		if n, err := s.DeviceChannelOverrides(ctx(t), "app"); err != nil || n != want {
			t.Fatalf("DeviceChannelOverrides = %d, %v; want %d", n, err, want)
		}
	}
	set := func(dev, ch, wantPrev string) {
		t.Helper()
		if prev, err := s.SetDeviceChannel(ctx(t), "app", dev, ch); err != nil || prev != wantPrev {
			t.Fatalf("SetDeviceChannel(%s, %q) = %q, %v; want previous %q", dev, ch, prev, err, wantPrev)
		}
	}
	count(0)
	// Clearing a device that has no record creates none.
	set("dev1", "", "")
	if _, err := s.GetDevice(ctx(t), "app", "dev1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("clearing created a device record: %v", err)
	}
	count(0)
	set("dev1", "beta", "")
	set("dev1", "beta", "beta") // unchanged: still one
	count(1)
	set("dev2", "beta", "")
	set("dev2", "alpha", "beta") // moved: still two
	count(2)
	if d, err := s.GetDevice(ctx(t), "app", "dev2"); err != nil || d.Channel != "alpha" {
		t.Fatalf("dev2 = %+v, %v", d, err)
	}
	set("dev1", "", "beta")
	set("dev1", "", "")
	count(1)
	if n, _ := s.DeviceChannelOverrides(ctx(t), "other"); n != 0 {
		t.Fatalf("another app counts %d overrides", n)
	}
	// Concurrent sets of one fresh device count it once.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.SetDeviceChannel(ctx(t), "app", "dev3", fmt.Sprintf("ch%d", i%2)); err != nil {
				t.Errorf("concurrent set: %v", err)
			}
		}()
	}
	wg.Wait()
	count(2)
}

func testStoreKeys(t *testing.T, tb store.Table) {
	s := store.New(tb)
	secret := store.NewKeySecret()
	k, err := s.CreateKey(ctx(t), secret, "ci", []string{"app"}, false, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateKey(ctx(t), "short", "x", nil, false, ""); err == nil {
		t.Fatal("weak secret accepted")
	}
	items, err := tb.Query(ctx(t), store.Query{PK: "KEYS"})
	if err != nil || len(items) != 1 {
		t.Fatalf("KEYS partition: %d items, %v", len(items), err)
	}
	raw := secret[len(store.KeyPrefix):]
	for _, it := range items {
		for _, field := range []string{string(it.Data), it.PK, it.SK} {
			if strings.Contains(field, raw) || strings.Contains(field, secret) {
				t.Fatalf("stored key item contains the secret: %s/%s %s", it.PK, it.SK, it.Data)
			}
		}
		if it.SK != store.HashKey(secret) {
			t.Fatalf("key stored under %q, want its hash", it.SK)
		}
	}
	got, err := s.LookupKey(ctx(t), secret)
	if err != nil || got.ID != k.ID || !got.Allows("app") || got.Allows("other") {
		t.Fatalf("LookupKey = %+v, %v", got, err)
	}
	if _, err := s.LookupKey(ctx(t), store.NewKeySecret()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := s.RevokeKey(ctx(t), k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupKey(ctx(t), secret); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoked key: %v, want ErrNotFound", err)
	}
	ks, err := s.ListKeys(ctx(t))
	if err != nil || len(ks) != 1 || ks[0].RevokedAt.IsZero() || ks[0].Hash != store.HashKey(secret) {
		t.Fatalf("ListKeys = %+v, %v", ks, err)
	}
}

func testStoreStats(t *testing.T, tb store.Table) {
	s := store.New(tb)
	day := store.Day(time.Now())
	ok := store.StatKey{Channel: "production", Version: "1.0.0", Action: "set"}
	fail := store.StatKey{Channel: "production", Version: "1.0.0", Action: "update_fail"}
	const workers, each = 8, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				k := ok
				if i%4 == 0 {
					k = fail
				}
				if _, err := s.AddStat(ctx(t), "app", day, k, 1); err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if _, err := s.AddStat(ctx(t), "app", day, ok, 5); err != nil {
		t.Fatal(err)
	}
	stats, err := s.ReadStats(ctx(t), "app", []string{day, "1999-01-01"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[store.StatKey]int64{}
	for _, c := range stats {
		if c.Day != day {
			t.Fatalf("count for day %s", c.Day)
		}
		got[c.StatKey] += c.Count
	}
	wantFail := int64(workers * each / 4)
	wantOK := int64(workers*each) - wantFail + 5
	if got[ok] != wantOK || got[fail] != wantFail || len(got) != 2 {
		t.Fatalf("stats %v, want %s=%d %s=%d", stats, ok.Action, wantOK, fail.Action, wantFail)
	}
	if other, _ := s.ReadStats(ctx(t), "other", []string{day}); len(other) != 0 {
		t.Fatalf("other app has stats: %v", other)
	}
}

func testStoreFirstSeen(t *testing.T, tb store.Table) {
	s := store.New(tb)
	for i, want := range []bool{true, false, false} {
		got, err := s.FirstSeen(ctx(t), "app", "fp1", time.Hour)
		if err != nil || got != want {
			t.Fatalf("FirstSeen #%d = %v, %v; want %v", i, got, err, want)
		}
	}
	if got, err := s.FirstSeen(ctx(t), "app", "fp2", time.Hour); err != nil || !got {
		t.Fatalf("other fingerprint: %v, %v", got, err)
	}
	if got, err := s.FirstSeen(ctx(t), "other", "fp1", time.Hour); err != nil || !got {
		t.Fatalf("same fingerprint, other app: %v, %v", got, err)
	}
	// a marker whose ttl has passed no longer dedupes
	past := s.WithClock(func() time.Time { return time.Now().Add(-2 * time.Hour) })
	if got, err := past.FirstSeen(ctx(t), "app", "fp3", time.Hour); err != nil || !got {
		t.Fatalf("fp3: %v, %v", got, err)
	}
	if got, err := s.FirstSeen(ctx(t), "app", "fp3", time.Hour); err != nil || !got {
		t.Fatalf("fp3 after its marker expired: %v, %v; want new", got, err)
	}
	// concurrent duplicates: exactly one is first
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := s.FirstSeen(ctx(t), "app", "race", time.Hour)
			if err != nil {
				t.Error(err)
			}
			if got {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if firsts.Load() != 1 {
		t.Fatalf("%d concurrent FirstSeen calls reported first, want 1", firsts.Load())
	}
}

func testStoreMisc(t *testing.T, tb store.Table) {
	s := store.New(tb)
	for want := int64(1); want <= 3; want++ {
		if n, err := s.NextSeq(ctx(t), "app", "build"); err != nil || n != want {
			t.Fatalf("NextSeq = %d, %v; want %d", n, err, want)
		}
	}
	if n, _ := s.NextSeq(ctx(t), "app", "channel"); n != 1 {
		t.Fatalf("sequences are not independent: %d", n)
	}
	p := store.Patch{AppID: "app", Kind: "ota", From: "1.0.0", To: "1.1.0", Key: "k", Size: 10, SHA256: "h"}
	if err := s.PutPatch(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPatch(ctx(t), p); err != nil {
		t.Fatalf("PutPatch is not idempotent: %v", err)
	}
	if got, err := s.GetPatch(ctx(t), "app", "ota", "1.0.0", "1.1.0"); err != nil || got.Key != "k" {
		t.Fatalf("GetPatch = %+v, %v", got, err)
	}
	if ps, err := s.ListPatches(ctx(t), "app", "ota"); err != nil || len(ps) != 1 {
		t.Fatalf("ListPatches = %+v, %v", ps, err)
	}
	if ps, _ := s.ListPatches(ctx(t), "app", "flux"); len(ps) != 0 {
		t.Fatalf("flux patches: %+v", ps)
	}
	if err := s.DeletePatch(ctx(t), "app", "ota", "1.0.0", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPatch(ctx(t), "app", "ota", "1.0.0", "1.1.0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted patch: %v", err)
	}
	t0 := time.Now().UTC()
	for i := range 5 {
		if err := s.Audit(ctx(t), store.AuditEntry{At: t0.Add(time.Duration(i) * time.Second), AppID: "app", KeyID: "k", Action: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Audit(ctx(t), store.AuditEntry{KeyID: "k", Action: "server"}); err != nil {
		t.Fatal(err)
	}
	es, err := s.ListAudit(ctx(t), "app", 2)
	if err != nil || len(es) != 2 || es[0].Action != "4" || es[1].Action != "3" {
		t.Fatalf("ListAudit = %+v, %v; want the two newest", es, err)
	}
	if es, _ := s.ListAudit(ctx(t), "", 0); len(es) != 1 || es[0].Action != "server" {
		t.Fatalf("server-wide audit = %+v", es)
	}
}
