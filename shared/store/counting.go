package store

import (
	"context"
	"sync/atomic"
)

// CountingTable wraps a Table and counts calls, to measure what each request costs
// in backend operations (DynamoDB bills per request).
type CountingTable struct {
	Table
	Reads, Writes, Queries atomic.Int64
}

// Counting wraps t.
func Counting(t Table) *CountingTable { return &CountingTable{Table: t} }

func (c *CountingTable) Get(ctx context.Context, pk, sk string) (Item, error) {
	c.Reads.Add(1)
	return c.Table.Get(ctx, pk, sk)
}

func (c *CountingTable) Put(ctx context.Context, it Item, cond Cond) (Item, error) {
	c.Writes.Add(1)
	return c.Table.Put(ctx, it, cond)
}

func (c *CountingTable) Delete(ctx context.Context, pk, sk string, cond Cond) error {
	c.Writes.Add(1)
	return c.Table.Delete(ctx, pk, sk, cond)
}

func (c *CountingTable) Query(ctx context.Context, q Query) ([]Item, error) {
	c.Queries.Add(1)
	return c.Table.Query(ctx, q)
}

func (c *CountingTable) Add(ctx context.Context, pk, sk string, delta, expires int64) (int64, error) {
	c.Writes.Add(1)
	return c.Table.Add(ctx, pk, sk, delta, expires)
}

func (c *CountingTable) Transact(ctx context.Context, ops []Op) error {
	c.Writes.Add(int64(len(ops)))
	return c.Table.Transact(ctx, ops)
}

// Total is every call so far.
func (c *CountingTable) Total() int64 { return c.Reads.Load() + c.Writes.Load() + c.Queries.Load() }
