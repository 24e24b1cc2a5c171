// Package dynamo is the DynamoDB metadata backend: a store.Table on one table
// (single-table design, see docs/dynamodb.md).
//
// Attributes: pk (S, hash key), sk (S, range key), d (B, the JSON document),
// rev (N), exp (N, unix seconds; the table's TTL attribute; absent = never),
// n (N, counter). Expiry is enforced on every read and in every condition, so
// behaviour never depends on when DynamoDB's TTL process actually deletes an item.
// Reads are strongly consistent, so a read after a write sees it, as with bolt.
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/otakit/ota/shared/store"
)

// Attribute names of the single-table layout.
const (
	AttrPK      = "pk"
	AttrSK      = "sk"
	AttrData    = "d"
	AttrRev     = "rev"
	AttrExpires = "exp" // the TTL attribute
	AttrN       = "n"
)

// Table is a store.Table on one DynamoDB table.
type Table struct {
	c    *dynamodb.Client
	name string
	now  func() time.Time
}

var _ store.Table = (*Table)(nil)

// New returns a Table on the existing table named table (see CreateTable).
func New(client *dynamodb.Client, table string) *Table {
	return &Table{c: client, name: table, now: time.Now}
}

// Name is the DynamoDB table name.
func (t *Table) Name() string { return t.name }

// Close does nothing: the client has no resources to release.
func (t *Table) Close() error { return nil }

// ---- expressions

// Conditions on the live state of an item (expired counts as absent). An item
// written by this package never stores exp = 0 (it removes the attribute), but
// conditions accept it as "never" anyway.
const (
	condLive = "(attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp = :zero OR #exp > :now))"
	condGone = "(attribute_not_exists(#pk) OR (#exp <> :zero AND #exp <= :now))"
	filtLive = "attribute_not_exists(#exp) OR #exp = :zero OR #exp > :now"
)

var (
	nameTok  = regexp.MustCompile(`#[A-Za-z0-9_]+`)
	valueTok = regexp.MustCompile(`:[A-Za-z0-9_]+`)
	allNames = map[string]string{"#pk": AttrPK, "#sk": AttrSK, "#d": AttrData, "#rev": AttrRev, "#exp": AttrExpires, "#n": AttrN}
)

// expr collects placeholder values and returns only the names and values the given
// expressions use (DynamoDB rejects unused ones).
type expr struct {
	vals map[string]types.AttributeValue
}

func newExpr(now int64) *expr {
	return &expr{vals: map[string]types.AttributeValue{
		":zero": num(0),
		":now":  num(now),
		":one":  num(1),
	}}
}

func (e *expr) set(name string, v types.AttributeValue) { e.vals[name] = v }

func (e *expr) build(exprs ...*string) (map[string]string, map[string]types.AttributeValue) {
	var all strings.Builder
	for _, s := range exprs {
		if s != nil {
			all.WriteString(*s)
			all.WriteByte(' ')
		}
	}
	names := map[string]string{}
	for _, tok := range nameTok.FindAllString(all.String(), -1) {
		if n, ok := allNames[tok]; ok {
			names[tok] = n
		}
	}
	vals := map[string]types.AttributeValue{}
	for _, tok := range valueTok.FindAllString(all.String(), -1) {
		if v, ok := e.vals[tok]; ok {
			vals[tok] = v
		}
	}
	if len(names) == 0 {
		names = nil
	}
	if len(vals) == 0 {
		vals = nil
	}
	return names, vals
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func keyOf(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: str(pk), AttrSK: str(sk)}
}

// condition returns the condition expression for c, or "" for Always.
func condition(c store.Cond, e *expr) (string, error) {
	switch c.Kind {
	case store.Always:
		return "", nil
	case store.IfAbsent:
		return condGone, nil
	case store.IfExists:
		return condLive, nil
	case store.IfRev:
		if c.Rev == 0 {
			return condGone, nil
		}
		e.set(":rev", num(c.Rev))
		return condLive + " AND #rev = :rev", nil
	}
	return "", fmt.Errorf("dynamo: unknown condition kind %d", c.Kind)
}

// putShape is which update a put sends: onto a live item (rev+1, counter kept) or
// a fresh create over an absent or expired one (rev 1, counter dropped).
type putShape uint8

const (
	shapeLive putShape = iota
	shapeFresh
)

// putUpdate builds the update and condition expressions of a put.
func putUpdate(it store.Item, c store.Cond, shape putShape, e *expr) (update, cond string, err error) {
	var set, remove []string
	if len(it.Data) > 0 {
		e.set(":d", &types.AttributeValueMemberB{Value: it.Data})
		set = append(set, "#d = :d")
	} else {
		remove = append(remove, "#d")
	}
	if it.Expires != 0 {
		e.set(":e", num(it.Expires))
		set = append(set, "#exp = :e")
	} else {
		remove = append(remove, "#exp")
	}
	userCond, err := condition(c, e)
	if err != nil {
		return "", "", err
	}
	switch shape {
	case shapeLive:
		if c.Kind == store.IfRev && c.Rev > 0 {
			e.set(":next", num(c.Rev+1))
			set = append(set, "#rev = :next")
		} else {
			set = append(set, "#rev = if_not_exists(#rev, :zero) + :one")
		}
		cond = condLive
		if userCond != "" && userCond != condLive {
			cond = userCond // IfRev N already includes condLive
		}
	case shapeFresh:
		set = append(set, "#rev = :one")
		remove = append(remove, "#n")
		cond = condGone
	}
	update = "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		update += " REMOVE " + strings.Join(remove, ", ")
	}
	return update, cond, nil
}

// shapesFor says which put shapes can satisfy c: Always tries both, the others one.
func shapesFor(c store.Cond) []putShape {
	switch {
	case c.Kind == store.Always:
		return []putShape{shapeLive, shapeFresh}
	case c.Kind == store.IfAbsent, c.Kind == store.IfRev && c.Rev == 0:
		return []putShape{shapeFresh}
	default:
		return []putShape{shapeLive}
	}
}

// ---- decoding

func decodeItem(m map[string]types.AttributeValue) (store.Item, error) {
	var it store.Item
	var err error
	for k, v := range m {
		switch k {
		case AttrPK:
			it.PK, err = sval(k, v)
		case AttrSK:
			it.SK, err = sval(k, v)
		case AttrData:
			b, ok := v.(*types.AttributeValueMemberB)
			if !ok {
				return it, fmt.Errorf("attribute %s: not binary", k)
			}
			if len(b.Value) > 0 {
				it.Data = b.Value
			}
		case AttrRev:
			it.Rev, err = nval(k, v)
		case AttrExpires:
			it.Expires, err = nval(k, v)
		case AttrN:
			it.N, err = nval(k, v)
		}
		if err != nil {
			return it, err
		}
	}
	return it, nil
}

func sval(k string, v types.AttributeValue) (string, error) {
	s, ok := v.(*types.AttributeValueMemberS)
	if !ok {
		return "", fmt.Errorf("attribute %s: not a string", k)
	}
	return s.Value, nil
}

func nval(k string, v types.AttributeValue) (int64, error) {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("attribute %s: not a number", k)
	}
	x, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s: %w", k, err)
	}
	return x, nil
}

// ---- errors

func isCondFailed(err error) bool {
	var e *types.ConditionalCheckFailedException
	return errors.As(err, &e)
}

func isTxConflict(err error) bool {
	var e *types.TransactionConflictException
	return errors.As(err, &e)
}

// maxAttempts bounds the internal retry loops (transaction conflicts, expiry races).
const maxAttempts = 8

// backoff sleeps a jittered, growing delay before attempt i (i >= 1).
func backoff(ctx context.Context, i int) error {
	d := time.Duration(5<<min(i, 6)) * time.Millisecond
	d = d/2 + rand.N(d)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func checkKey(pk, sk string) error {
	if pk == "" || sk == "" {
		return fmt.Errorf("dynamo: empty key %q/%q: partition and sort key are required", pk, sk)
	}
	return nil
}

// ---- Table

// Get returns the live item (strongly consistent read) or store.ErrNotFound.
func (t *Table) Get(ctx context.Context, pk, sk string) (store.Item, error) {
	if err := checkKey(pk, sk); err != nil {
		return store.Item{}, err
	}
	out, err := t.c.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &t.name,
		Key:            keyOf(pk, sk),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return store.Item{}, fmt.Errorf("dynamo: get %s/%s: %w", pk, sk, err)
	}
	if out.Item == nil {
		return store.Item{}, fmt.Errorf("get %s/%s: %w", pk, sk, store.ErrNotFound)
	}
	it, err := decodeItem(out.Item)
	if err != nil {
		return store.Item{}, fmt.Errorf("dynamo: get %s/%s: %w", pk, sk, err)
	}
	if it.Expired(t.now()) {
		return store.Item{}, fmt.Errorf("get %s/%s: %w", pk, sk, store.ErrNotFound)
	}
	return it, nil
}

// Put writes it (Data, Expires) if c holds and returns the stored item. A put onto
// a live item increments Rev and keeps its counter; onto an absent or expired item
// it starts over at Rev 1.
func (t *Table) Put(ctx context.Context, it store.Item, c store.Cond) (store.Item, error) {
	if err := checkKey(it.PK, it.SK); err != nil {
		return store.Item{}, err
	}
	shapes := shapesFor(c)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return store.Item{}, fmt.Errorf("dynamo: put %s/%s: %w", it.PK, it.SK, err)
			}
		}
		retry := false
		for _, shape := range shapes {
			e := newExpr(t.now().Unix())
			upd, cond, err := putUpdate(it, c, shape, e)
			if err != nil {
				return store.Item{}, err
			}
			names, vals := e.build(&upd, &cond)
			out, err := t.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName:                 &t.name,
				Key:                       keyOf(it.PK, it.SK),
				UpdateExpression:          &upd,
				ConditionExpression:       &cond,
				ExpressionAttributeNames:  names,
				ExpressionAttributeValues: vals,
				ReturnValues:              types.ReturnValueAllNew,
			})
			switch {
			case err == nil:
				got, err := decodeItem(out.Attributes)
				if err != nil {
					return store.Item{}, fmt.Errorf("dynamo: put %s/%s: %w", it.PK, it.SK, err)
				}
				return got, nil
			case isCondFailed(err):
				continue // next shape, or a conflict
			case isTxConflict(err):
				retry = true
			default:
				return store.Item{}, fmt.Errorf("dynamo: put %s/%s: %w", it.PK, it.SK, err)
			}
			break
		}
		if !retry && c.Kind != store.Always {
			return store.Item{}, fmt.Errorf("put %s/%s: %w", it.PK, it.SK, store.ErrConflict)
		}
		// Always: the item appeared or expired between the two shapes; go again.
	}
	return store.Item{}, fmt.Errorf("put %s/%s: %w (after %d attempts)", it.PK, it.SK, store.ErrConflict, maxAttempts)
}

// Delete removes the item if c holds. Deleting an absent item with Always is not an error.
func (t *Table) Delete(ctx context.Context, pk, sk string, c store.Cond) error {
	if err := checkKey(pk, sk); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		e := newExpr(t.now().Unix())
		cond, err := condition(c, e)
		if err != nil {
			return err
		}
		in := &dynamodb.DeleteItemInput{TableName: &t.name, Key: keyOf(pk, sk)}
		if cond != "" {
			in.ConditionExpression = &cond
			in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.build(&cond)
		}
		_, err = t.c.DeleteItem(ctx, in)
		switch {
		case err == nil:
			return nil
		case isCondFailed(err):
			return fmt.Errorf("delete %s/%s: %w", pk, sk, store.ErrConflict)
		case isTxConflict(err) && attempt+1 < maxAttempts:
			if err := backoff(ctx, attempt+1); err != nil {
				return fmt.Errorf("dynamo: delete %s/%s: %w", pk, sk, err)
			}
		case isTxConflict(err):
			return fmt.Errorf("delete %s/%s: %w (%v)", pk, sk, store.ErrConflict, err)
		default:
			return fmt.Errorf("dynamo: delete %s/%s: %w", pk, sk, err)
		}
	}
}

// Query returns the live items of one partition whose sort key starts with q.Prefix,
// in sort-key order (descending with q.Desc), at most q.Limit when set. Expired
// items are filtered out and paging continues until the limit is met.
func (t *Table) Query(ctx context.Context, q store.Query) ([]store.Item, error) {
	if q.PK == "" {
		return nil, errors.New("dynamo: query: empty partition key")
	}
	now := t.now()
	e := newExpr(now.Unix())
	e.set(":pk", str(q.PK))
	kc := "#pk = :pk"
	if q.Prefix != "" {
		e.set(":p", str(q.Prefix))
		kc += " AND begins_with(#sk, :p)"
	}
	filter := filtLive
	names, vals := e.build(&kc, aws.String(filter))
	in := &dynamodb.QueryInput{
		TableName:                 &t.name,
		KeyConditionExpression:    &kc,
		FilterExpression:          &filter,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: vals,
		ScanIndexForward:          aws.Bool(!q.Desc),
		ConsistentRead:            aws.Bool(true),
	}
	var items []store.Item
	for {
		if q.Limit > 0 {
			// DynamoDB applies Limit before the filter: ask for what is still missing
			// and keep paging past expired items.
			in.Limit = aws.Int32(int32(min(q.Limit-len(items), 1000)))
		}
		out, err := t.c.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamo: query %s/%s*: %w", q.PK, q.Prefix, err)
		}
		for _, m := range out.Items {
			it, err := decodeItem(m)
			if err != nil {
				return nil, fmt.Errorf("dynamo: query %s/%s*: %w", q.PK, q.Prefix, err)
			}
			if it.Expired(now) {
				continue
			}
			items = append(items, it)
			if q.Limit > 0 && len(items) >= q.Limit {
				return items, nil
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Add atomically adds delta to the counter N of pk/sk and sets its expiry. A live
// item keeps its Rev and document; an absent or expired one is created with Rev 1.
func (t *Table) Add(ctx context.Context, pk, sk string, delta int64, expires int64) (int64, error) {
	if err := checkKey(pk, sk); err != nil {
		return 0, err
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return 0, fmt.Errorf("dynamo: add %s/%s: %w", pk, sk, err)
			}
		}
		for _, shape := range []putShape{shapeLive, shapeFresh} {
			e := newExpr(t.now().Unix())
			upd, cond := addUpdate(delta, expires, shape, e)
			names, vals := e.build(&upd, &cond)
			out, err := t.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName:                 &t.name,
				Key:                       keyOf(pk, sk),
				UpdateExpression:          &upd,
				ConditionExpression:       &cond,
				ExpressionAttributeNames:  names,
				ExpressionAttributeValues: vals,
				ReturnValues:              types.ReturnValueUpdatedNew,
			})
			switch {
			case err == nil:
				v, ok := out.Attributes[AttrN]
				if !ok {
					return 0, fmt.Errorf("dynamo: add %s/%s: no counter in response", pk, sk)
				}
				n, err := nval(AttrN, v)
				if err != nil {
					return 0, fmt.Errorf("dynamo: add %s/%s: %w", pk, sk, err)
				}
				return n, nil
			case isCondFailed(err):
				continue // not live: try creating it
			case isTxConflict(err):
				// a transaction holds the item: back off and go again
			default:
				return 0, fmt.Errorf("dynamo: add %s/%s: %w", pk, sk, err)
			}
			break
		}
		// both shapes failed (a race with creation or expiry) or a transaction held the item: go again
	}
	return 0, fmt.Errorf("dynamo: add %s/%s: gave up after %d attempts under contention", pk, sk, maxAttempts)
}

// addUpdate builds the update and condition expressions of a counter add: onto a
// live item (ADD, Rev and document kept) or over an absent or expired one (created
// with Rev 1, the stale counter and document dropped).
func addUpdate(delta, expires int64, shape putShape, e *expr) (update, cond string) {
	e.set(":delta", num(delta))
	var set, remove []string
	if expires != 0 {
		e.set(":e", num(expires))
		set = append(set, "#exp = :e")
	} else {
		remove = append(remove, "#exp")
	}
	if shape == shapeLive {
		cond = condLive
		update = "ADD #n :delta"
	} else {
		cond = condGone
		set = append(set, "#n = :delta", "#rev = :one")
		remove = append(remove, "#d")
	}
	if len(set) > 0 {
		update += " SET " + strings.Join(set, ", ")
	}
	if len(remove) > 0 {
		update += " REMOVE " + strings.Join(remove, ", ")
	}
	return strings.TrimSpace(update), cond
}

// Transact applies all ops or none with TransactWriteItems: store.ErrConflict when a
// condition fails. At most 25 ops, each on a different item (DynamoDB's rules).
func (t *Table) Transact(ctx context.Context, ops []store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	if len(ops) > store.MaxTransactOps {
		return fmt.Errorf("dynamo: transact: %d ops, at most %d allowed", len(ops), store.MaxTransactOps)
	}
	seen := make(map[[2]string]bool, len(ops))
	for _, op := range ops {
		if err := checkKey(op.Item.PK, op.Item.SK); err != nil {
			return err
		}
		k := [2]string{op.Item.PK, op.Item.SK}
		if seen[k] {
			return fmt.Errorf("dynamo: transact: two ops on %s/%s (not allowed)", op.Item.PK, op.Item.SK)
		}
		seen[k] = true
		if op.Kind == store.OpAdd && op.Cond.Kind != store.Always {
			return fmt.Errorf("dynamo: transact: add on %s/%s: only unconditional adds are supported", op.Item.PK, op.Item.SK)
		}
	}
	// An unconditional put or add must still know whether it lands on a live item
	// (rev+1, counter kept) or starts over (rev 1); guess live, and flip the guess
	// when DynamoDB says the implied condition failed.
	shapes := make([]putShape, len(ops))
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return fmt.Errorf("dynamo: transact: %w", err)
			}
		}
		items, index, err := t.transactItems(ops, shapes)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return nil // only unconditional checks
		}
		_, err = t.c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return nil
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			if isTxConflict(err) {
				continue
			}
			return fmt.Errorf("dynamo: transact: %w", err)
		}
		conflict, again := false, false
		for i, r := range tce.CancellationReasons {
			if i >= len(index) || r.Code == nil {
				continue
			}
			op := ops[index[i]]
			switch *r.Code {
			case "None", "":
			case "ConditionalCheckFailed":
				if (op.Kind == store.OpPut || op.Kind == store.OpAdd) && op.Cond.Kind == store.Always {
					shapes[index[i]] ^= 1 // the item is not in the state we guessed
					again = true
				} else {
					conflict = true
				}
			case "TransactionConflict":
				again = true
			default:
				return fmt.Errorf("dynamo: transact: op %d (%s/%s): %s: %w", index[i], op.Item.PK, op.Item.SK, aws.ToString(r.Message), err)
			}
		}
		if conflict {
			return fmt.Errorf("transact: %w", store.ErrConflict)
		}
		if !again {
			return fmt.Errorf("dynamo: transact: %w", err)
		}
	}
	return fmt.Errorf("transact: %w (after %d attempts)", store.ErrConflict, maxAttempts)
}

// transactItems builds the request; index maps each request item to its op.
func (t *Table) transactItems(ops []store.Op, shapes []putShape) ([]types.TransactWriteItem, []int, error) {
	now := t.now().Unix()
	var items []types.TransactWriteItem
	var index []int
	for i, op := range ops {
		e := newExpr(now)
		key := keyOf(op.Item.PK, op.Item.SK)
		var ti types.TransactWriteItem
		switch op.Kind {
		case store.OpPut:
			shape := shapes[i]
			if op.Cond.Kind != store.Always {
				shape = shapesFor(op.Cond)[0]
			}
			upd, cond, err := putUpdate(op.Item, op.Cond, shape, e)
			if err != nil {
				return nil, nil, err
			}
			names, vals := e.build(&upd, &cond)
			ti.Update = &types.Update{TableName: &t.name, Key: key, UpdateExpression: &upd,
				ConditionExpression: &cond, ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureNone}
		case store.OpDelete:
			cond, err := condition(op.Cond, e)
			if err != nil {
				return nil, nil, err
			}
			ti.Delete = &types.Delete{TableName: &t.name, Key: key}
			if cond != "" {
				ti.Delete.ConditionExpression = &cond
				ti.Delete.ExpressionAttributeNames, ti.Delete.ExpressionAttributeValues = e.build(&cond)
			}
		case store.OpAdd:
			upd, cond := addUpdate(op.Item.N, op.Item.Expires, shapes[i], e)
			names, vals := e.build(&upd, &cond)
			ti.Update = &types.Update{TableName: &t.name, Key: key, UpdateExpression: &upd,
				ConditionExpression: &cond, ExpressionAttributeNames: names, ExpressionAttributeValues: vals}
		case store.OpCheck:
			cond, err := condition(op.Cond, e)
			if err != nil {
				return nil, nil, err
			}
			if cond == "" {
				continue // an unconditional check always holds
			}
			names, vals := e.build(&cond)
			ti.ConditionCheck = &types.ConditionCheck{TableName: &t.name, Key: key, ConditionExpression: &cond,
				ExpressionAttributeNames: names, ExpressionAttributeValues: vals}
		default:
			return nil, nil, fmt.Errorf("dynamo: transact: op %d: unknown kind %d", i, op.Kind)
		}
		items = append(items, ti)
		index = append(index, i)
	}
	return items, index, nil
}
