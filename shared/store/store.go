package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrExists: a create found the key taken.
var ErrExists = errors.New("already exists")

// Store is the typed metadata access every handler uses, over any Table.
type Store struct {
	t   Table
	now func() time.Time
}

// New wraps a table.
func New(t Table) *Store { return &Store{t: t, now: time.Now} }

// Table returns the underlying table (for tests and tools).
func (s *Store) Table() Table { return s.t }

// Now is the store's clock (settable in tests through WithClock).
func (s *Store) Now() time.Time { return s.now() }

// WithClock returns a copy of s reading time from now.
func (s *Store) WithClock(now func() time.Time) *Store { c := *s; c.now = now; return &c }

// Close closes the table.
func (s *Store) Close() error { return s.t.Close() }

// Doc is a decoded item with the revision it was read at.
type Doc[T any] struct {
	V   T
	Rev int64
}

func getDoc[T any](ctx context.Context, t Table, pk, sk string) (Doc[T], error) {
	var d Doc[T]
	it, err := t.Get(ctx, pk, sk)
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(it.Data, &d.V); err != nil {
		return d, fmt.Errorf("decode %s/%s: %w", pk, sk, err)
	}
	d.Rev = it.Rev
	return d, nil
}

func queryDocs[T any](ctx context.Context, t Table, q Query) ([]T, error) {
	items, err := t.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(items))
	for _, it := range items {
		var v T
		if err := json.Unmarshal(it.Data, &v); err != nil {
			return nil, fmt.Errorf("decode %s/%s: %w", it.PK, it.SK, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func putOp(pk, sk string, v any, c Cond, expires int64) (Op, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Op{}, fmt.Errorf("encode %s/%s: %w", pk, sk, err)
	}
	return Op{Kind: OpPut, Item: Item{PK: pk, SK: sk, Data: b, Expires: expires}, Cond: c}, nil
}

func putDoc(ctx context.Context, t Table, pk, sk string, v any, c Cond, expires int64) (int64, error) {
	op, err := putOp(pk, sk, v, c, expires)
	if err != nil {
		return 0, err
	}
	it, err := t.Put(ctx, op.Item, c)
	return it.Rev, err
}

// maxRetries bounds optimistic read-modify-write loops under contention.
const maxRetries = 20

// ErrUnchanged may be returned by an update function to skip the write.
var ErrUnchanged = errors.New("unchanged")

// update runs read-modify-write on one document with a revision condition, retrying
// when another writer got there first. fn sees the zero T and rev 0 when absent.
func update[T any](ctx context.Context, t Table, pk, sk string, expires int64, fn func(v *T, exists bool) error) (T, error) {
	for range maxRetries {
		d, err := getDoc[T](ctx, t, pk, sk)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return d.V, err
		}
		if err := fn(&d.V, d.Rev != 0); err != nil {
			if errors.Is(err, ErrUnchanged) {
				return d.V, nil
			}
			return d.V, err
		}
		_, err = putDoc(ctx, t, pk, sk, d.V, Cond{Kind: IfRev, Rev: d.Rev}, expires)
		if errors.Is(err, ErrConflict) {
			continue
		}
		return d.V, err
	}
	var zero T
	return zero, fmt.Errorf("update %s/%s: %w after %d attempts", pk, sk, ErrConflict, maxRetries)
}
