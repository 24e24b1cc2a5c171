// Package bolt is the embedded metadata backend: a store.Table on one bbolt file.
//
// Layout: one bucket ("items"); the key of an item is uvarint(len(pk)) | pk | sk, so
// every partition is one contiguous, sort-key ordered key range and a query is a
// cursor seek plus a short walk. The value is a small binary header (rev, expires,
// counter) followed by the JSON document.
//
// Semantics match the DynamoDB backend exactly (the storetest suite runs against
// both): expired items are invisible and count as absent, items are limited to
// DynamoDB's 400 KB, transactions hold at most 25 ops on distinct keys.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/otakit/ota/shared/store"
)

var bucketItems = []byte("items")

// MaxItemSize mirrors DynamoDB's item size limit (names and values of all attributes),
// so an item that fits here also fits there.
const MaxItemSize = 400 * 1024

// itemOverhead approximates the attribute names and numbers DynamoDB counts.
const itemOverhead = 64

// SweepInterval is how often Open's background sweeper deletes expired items.
const SweepInterval = time.Hour

// Table is a store.Table on a bbolt database file.
type Table struct {
	db   *bbolt.DB
	now  func() time.Time
	stop chan struct{}
	done chan struct{}
	once sync.Once

	writers atomic.Int32 // writes in flight
}

var _ store.Table = (*Table)(nil)

// Open opens (creating if missing, mode 0600) the database at path. A file held by
// another process fails after 2 s with a "database is locked" error.
func Open(path string) (*Table, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("bolt: create folder for %s: %w", path, err)
		}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("bolt: open %s: database is locked (another process, e.g. a running otad, holds it): %w", path, err)
		}
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketItems)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: init %s: %w", path, err)
	}
	// Concurrent writers (stats counters, device records) share one commit and
	// fsync; a lone writer waits at most this long for company.
	db.MaxBatchDelay = 2 * time.Millisecond
	t := &Table{db: db, now: time.Now, stop: make(chan struct{}), done: make(chan struct{})}
	go t.sweeper()
	return t, nil
}

// Close stops the sweeper and closes the file.
func (t *Table) Close() error {
	var err error
	t.once.Do(func() {
		close(t.stop)
		<-t.done
		err = t.db.Close()
	})
	return err
}

// write runs fn in a write transaction. A lone writer commits at once; writers that
// overlap are grouped by bbolt's Batch into one commit (one fsync), which is what
// keeps many devices reporting at once cheap. fn may run more than once, so it must
// only assign its results.
func (t *Table) write(fn func(*bbolt.Tx) error) error {
	defer t.writers.Add(-1)
	if t.writers.Add(1) == 1 {
		return t.db.Update(fn)
	}
	return t.db.Batch(fn)
}

// DB exposes the underlying database (backups: DB().View(tx.WriteTo)).
func (t *Table) DB() *bbolt.DB { return t.db }

// ---- encoding

func key(pk, sk string) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+len(pk)+len(sk))
	b = binary.AppendUvarint(b, uint64(len(pk)))
	b = append(b, pk...)
	return append(b, sk...)
}

const valueVersion = 1

type record struct {
	rev, exp, n int64
	data        []byte
}

func encode(r record) []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(r.data))
	b = append(b, valueVersion)
	b = binary.AppendVarint(b, r.rev)
	b = binary.AppendVarint(b, r.exp)
	b = binary.AppendVarint(b, r.n)
	return append(b, r.data...)
}

// decode copies what it keeps: bbolt's slices are only valid inside the transaction.
func decode(v []byte) (record, error) {
	var r record
	if len(v) < 1 || v[0] != valueVersion {
		return r, errors.New("bolt: corrupt value (unknown version)")
	}
	p := v[1:]
	for _, dst := range []*int64{&r.rev, &r.exp, &r.n} {
		x, w := binary.Varint(p)
		if w <= 0 {
			return r, errors.New("bolt: corrupt value")
		}
		*dst = x
		p = p[w:]
	}
	if len(p) > 0 {
		r.data = bytes.Clone(p)
	}
	return r, nil
}

func (r record) expired(now int64) bool { return r.exp != 0 && r.exp <= now }

func (r record) item(pk, sk string) store.Item {
	return store.Item{PK: pk, SK: sk, Data: r.data, Rev: r.rev, Expires: r.exp, N: r.n}
}

func checkKey(pk, sk string) error {
	if pk == "" || sk == "" {
		return fmt.Errorf("bolt: empty key %q/%q: partition and sort key are required", pk, sk)
	}
	return nil
}

func checkSize(it store.Item) error {
	if sz := len(it.PK) + len(it.SK) + len(it.Data) + itemOverhead; sz > MaxItemSize {
		return fmt.Errorf("bolt: item %s/%s is %d bytes, over the %d byte item limit", it.PK, it.SK, sz, MaxItemSize)
	}
	return nil
}

// live reads the live item under k in tx; ok is false when absent or expired.
func live(b *bbolt.Bucket, k []byte, now int64) (record, bool, error) {
	v := b.Get(k)
	if v == nil {
		return record{}, false, nil
	}
	r, err := decode(v)
	if err != nil {
		return record{}, false, err
	}
	if r.expired(now) {
		return record{}, false, nil
	}
	return r, true, nil
}

func holds(c store.Cond, r record, ok bool) (bool, error) {
	switch c.Kind {
	case store.Always:
		return true, nil
	case store.IfAbsent:
		return !ok, nil
	case store.IfExists:
		return ok, nil
	case store.IfRev:
		if c.Rev == 0 {
			return !ok, nil
		}
		return ok && r.rev == c.Rev, nil
	}
	return false, fmt.Errorf("bolt: unknown condition kind %d", c.Kind)
}

// ---- Table

// Get returns the live item or store.ErrNotFound.
func (t *Table) Get(ctx context.Context, pk, sk string) (store.Item, error) {
	if err := ctx.Err(); err != nil {
		return store.Item{}, err
	}
	if err := checkKey(pk, sk); err != nil {
		return store.Item{}, err
	}
	var r record
	var ok bool
	now := t.now().Unix()
	err := t.db.View(func(tx *bbolt.Tx) error {
		var err error
		r, ok, err = live(tx.Bucket(bucketItems), key(pk, sk), now)
		return err
	})
	if err != nil {
		return store.Item{}, fmt.Errorf("bolt: get %s/%s: %w", pk, sk, err)
	}
	if !ok {
		return store.Item{}, fmt.Errorf("get %s/%s: %w", pk, sk, store.ErrNotFound)
	}
	return r.item(pk, sk), nil
}

// put writes one item inside tx; it is shared by Put and Transact.
func put(b *bbolt.Bucket, it store.Item, c store.Cond, now int64) (record, error) {
	k := key(it.PK, it.SK)
	old, ok, err := live(b, k, now)
	if err != nil {
		return record{}, err
	}
	h, err := holds(c, old, ok)
	if err != nil {
		return record{}, err
	}
	if !h {
		return record{}, store.ErrConflict
	}
	r := record{rev: 1, exp: it.Expires, data: bytes.Clone(it.Data)}
	if ok { // a live item keeps its counter; an expired one is replaced whole
		r.rev = old.rev + 1
		r.n = old.n
	}
	if err := b.Put(k, encode(r)); err != nil {
		return record{}, err
	}
	return r, nil
}

func del(b *bbolt.Bucket, pk, sk string, c store.Cond, now int64) error {
	k := key(pk, sk)
	old, ok, err := live(b, k, now)
	if err != nil {
		return err
	}
	h, err := holds(c, old, ok)
	if err != nil {
		return err
	}
	if !h {
		return store.ErrConflict
	}
	return b.Delete(k)
}

func check(b *bbolt.Bucket, pk, sk string, c store.Cond, now int64) error {
	old, ok, err := live(b, key(pk, sk), now)
	if err != nil {
		return err
	}
	h, err := holds(c, old, ok)
	if err != nil {
		return err
	}
	if !h {
		return store.ErrConflict
	}
	return nil
}

// Put writes it (Data, Expires) if c holds and returns the stored item.
func (t *Table) Put(ctx context.Context, it store.Item, c store.Cond) (store.Item, error) {
	if err := ctx.Err(); err != nil {
		return store.Item{}, err
	}
	if err := checkKey(it.PK, it.SK); err != nil {
		return store.Item{}, err
	}
	if err := checkSize(it); err != nil {
		return store.Item{}, err
	}
	var r record
	now := t.now().Unix()
	err := t.write(func(tx *bbolt.Tx) error { // may run more than once: only assigns
		var err error
		r, err = put(tx.Bucket(bucketItems), it, c, now)
		return err
	})
	if err != nil {
		return store.Item{}, fmt.Errorf("put %s/%s: %w", it.PK, it.SK, err)
	}
	return r.item(it.PK, it.SK), nil
}

// Delete removes the item if c holds. Deleting an absent item with Always is not an error.
func (t *Table) Delete(ctx context.Context, pk, sk string, c store.Cond) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey(pk, sk); err != nil {
		return err
	}
	now := t.now().Unix()
	err := t.write(func(tx *bbolt.Tx) error {
		return del(tx.Bucket(bucketItems), pk, sk, c, now)
	})
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", pk, sk, err)
	}
	return nil
}

// Query returns the live items of one partition whose sort key starts with q.Prefix,
// in sort-key order (descending with q.Desc), at most q.Limit of them when set.
func (t *Table) Query(ctx context.Context, q store.Query) ([]store.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.PK == "" {
		return nil, errors.New("bolt: query: empty partition key")
	}
	prefix := key(q.PK, q.Prefix)
	skStart := len(prefix) - len(q.Prefix)
	now := t.now().Unix()
	var out []store.Item
	err := t.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketItems).Cursor()
		var k, v []byte
		next := c.Next
		if q.Desc {
			next = c.Prev
			if end := successor(prefix); end == nil {
				k, v = c.Last()
			} else if k, v = c.Seek(end); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Seek(prefix)
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = next() {
			if q.Limit > 0 && len(out) >= q.Limit {
				break
			}
			r, err := decode(v)
			if err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
			if r.expired(now) {
				continue
			}
			out = append(out, r.item(q.PK, string(k[skStart:])))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: query %s/%s*: %w", q.PK, q.Prefix, err)
	}
	return out, nil
}

// successor returns the smallest key greater than every key with prefix p, or nil
// when there is none (p is all 0xff).
func successor(p []byte) []byte {
	s := bytes.Clone(p)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] < 0xff {
			s[i]++
			return s[:i+1]
		}
	}
	return nil
}

// Add atomically adds delta to the counter N of pk/sk (creating the item with Rev 1,
// or replacing an expired one), sets its expiry, and returns the new N.
func (t *Table) Add(ctx context.Context, pk, sk string, delta int64, expires int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkKey(pk, sk); err != nil {
		return 0, err
	}
	var n int64
	now := t.now().Unix()
	err := t.write(func(tx *bbolt.Tx) error { // may run more than once: only assigns
		var err error
		n, err = add(tx.Bucket(bucketItems), pk, sk, delta, expires, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: add %s/%s: %w", pk, sk, err)
	}
	return n, nil
}

// add adds delta to the counter of pk/sk inside tx; it is shared by Add and Transact.
func add(b *bbolt.Bucket, pk, sk string, delta, expires, now int64) (int64, error) {
	k := key(pk, sk)
	r, ok, err := live(b, k, now)
	if err != nil {
		return 0, err
	}
	if !ok { // absent or expired: start over, like DynamoDB's create shape
		r = record{rev: 1}
	}
	r.n += delta
	r.exp = expires
	return r.n, b.Put(k, encode(r))
}

// Transact applies all ops in one bbolt transaction, or none: store.ErrConflict when a
// condition fails. Like DynamoDB it takes at most 25 ops, each on a different item.
func (t *Table) Transact(ctx context.Context, ops []store.Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	if len(ops) > store.MaxTransactOps {
		return fmt.Errorf("bolt: transact: %d ops, at most %d allowed", len(ops), store.MaxTransactOps)
	}
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		if err := checkKey(op.Item.PK, op.Item.SK); err != nil {
			return err
		}
		k := string(key(op.Item.PK, op.Item.SK))
		if seen[k] {
			return fmt.Errorf("bolt: transact: two ops on %s/%s (not allowed, as in DynamoDB)", op.Item.PK, op.Item.SK)
		}
		seen[k] = true
		if op.Kind == store.OpPut {
			if err := checkSize(op.Item); err != nil {
				return err
			}
		}
		if op.Kind == store.OpAdd && op.Cond.Kind != store.Always {
			return fmt.Errorf("bolt: transact: add on %s/%s: only unconditional adds are supported", op.Item.PK, op.Item.SK)
		}
	}
	now := t.now().Unix()
	err := t.write(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketItems)
		for i, op := range ops {
			var err error
			switch op.Kind {
			case store.OpPut:
				_, err = put(b, op.Item, op.Cond, now)
			case store.OpDelete:
				err = del(b, op.Item.PK, op.Item.SK, op.Cond, now)
			case store.OpCheck:
				err = check(b, op.Item.PK, op.Item.SK, op.Cond, now)
			case store.OpAdd:
				_, err = add(b, op.Item.PK, op.Item.SK, op.Item.N, op.Item.Expires, now)
			default:
				err = fmt.Errorf("unknown op kind %d", op.Kind)
			}
			if err != nil {
				return fmt.Errorf("op %d (%s/%s): %w", i, op.Item.PK, op.Item.SK, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("transact: %w", err)
	}
	return nil
}

// ---- expiry sweeping (reads never depend on it; it only reclaims space)

// Sweep deletes items expired at now and returns how many it removed. It works in
// short write transactions so it never blocks writers for long.
func (t *Table) Sweep(now time.Time) (int, error) {
	const batch = 1000
	total := 0
	var after []byte
	for {
		var keys [][]byte
		var last []byte
		err := t.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketItems).Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			scanned := 0
			for ; k != nil && len(keys) < batch && scanned < 50*batch; k, v = c.Next() {
				scanned++
				last = bytes.Clone(k)
				r, err := decode(v)
				if err != nil {
					continue // leave what we cannot read alone
				}
				if r.expired(now.Unix()) {
					keys = append(keys, bytes.Clone(k))
				}
			}
			if k == nil {
				last = nil
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("bolt: sweep: %w", err)
		}
		if len(keys) > 0 {
			err = t.db.Update(func(tx *bbolt.Tx) error {
				b := tx.Bucket(bucketItems)
				for _, k := range keys {
					// re-check: the item may have been rewritten since the scan
					if v := b.Get(k); v != nil {
						if r, err := decode(v); err == nil && r.expired(now.Unix()) {
							if err := b.Delete(k); err != nil {
								return err
							}
							total++
						}
					}
				}
				return nil
			})
			if err != nil {
				return total, fmt.Errorf("bolt: sweep: %w", err)
			}
		}
		if last == nil {
			return total, nil
		}
		after = last
		select {
		case <-t.stop:
			return total, nil
		default:
		}
	}
}

func (t *Table) sweeper() {
	defer close(t.done)
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-timer.C:
			_, _ = t.Sweep(t.now()) // best effort; reads filter expired items anyway
			timer.Reset(SweepInterval)
		}
	}
}
