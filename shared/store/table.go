// Package store is the metadata layer: a small Table interface shaped for DynamoDB's
// single-table model, and the typed access (apps, releases, channels, ...) written
// once over it. Backends live in subpackages (bolt, dynamo); storetest holds the
// contract suite every backend must pass.
package store

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound: no live item under that key (expired items count as absent).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a write's condition did not hold (someone else wrote first).
	ErrConflict = errors.New("condition failed")
)

// Item is one record: a JSON document plus the few attributes the table itself
// understands.
type Item struct {
	PK, SK  string
	Data    []byte // JSON document; opaque to the table
	Rev     int64  // set by the table: 1 on create, +1 on every put; 0 when absent
	Expires int64  // unix seconds; 0 = never. Expired items are invisible to every read.
	N       int64  // counter value (see Add)
}

// Expired reports whether the item is past its expiry at now.
func (it Item) Expired(now time.Time) bool { return it.Expires != 0 && it.Expires <= now.Unix() }

// CondKind says when a write may happen.
type CondKind uint8

const (
	Always   CondKind = iota
	IfAbsent          // no live item under the key
	IfRev             // the live item has exactly Cond.Rev (0 means: absent)
	IfExists          // some live item is there
)

// Cond is a write condition.
type Cond struct {
	Kind CondKind
	Rev  int64
}

// OpKind is what one transaction step does.
type OpKind uint8

const (
	OpPut OpKind = iota
	OpDelete
	OpCheck // condition only, no write
	// OpAdd adds Item.N to the item's counter and sets Item.Expires, exactly as
	// Table.Add does, but inside the transaction (so a counter can move together with
	// the document it counts). Its Cond must be Always.
	OpAdd
)

// Op is one step of a transaction.
type Op struct {
	Kind OpKind
	Item Item // PK/SK always; Data/Expires for puts; N (the delta)/Expires for adds
	Cond Cond
}

// Query selects items of one partition.
type Query struct {
	PK     string
	Prefix string // sort-key prefix; "" = all
	Desc   bool   // descending sort-key order
	Limit  int    // 0 = no limit
}

// Table is the whole contract a metadata backend implements. Every method is safe
// for concurrent use; every state change can be made conditional.
type Table interface {
	Get(ctx context.Context, pk, sk string) (Item, error)
	// Put writes it (Data and Expires) if c holds and returns the stored item with its new Rev.
	Put(ctx context.Context, it Item, c Cond) (Item, error)
	Delete(ctx context.Context, pk, sk string, c Cond) error
	Query(ctx context.Context, q Query) ([]Item, error)
	// Add atomically adds delta to the item's counter N, creating the item if needed,
	// and returns the new value. expires (unix s, 0 = never) is set on the item.
	Add(ctx context.Context, pk, sk string, delta int64, expires int64) (int64, error)
	// Transact applies all ops or none (at most 25); ErrConflict if any condition fails.
	Transact(ctx context.Context, ops []Op) error
	Close() error
}

// MaxTransactOps matches DynamoDB's limit for TransactWriteItems.
const MaxTransactOps = 25
