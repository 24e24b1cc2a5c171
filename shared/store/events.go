package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/otakit/ota/shared/release"
)

// Exactly-once counting. Clients resend a batch whose answer they did not get, so
// every de-duplicated event writes its marker in the SAME transaction as what it
// counts: a crash or a lost answer leaves both or neither, and a resent event finds
// its marker only if it was counted.

// Marker identifies a de-duplicated event: a fingerprint remembered for TTL.
type Marker struct {
	Fingerprint string
	TTL         time.Duration
}

func (m Marker) set() bool { return m.Fingerprint != "" }

func dedupPK(app, fingerprint string) string { return "DEDUP#" + app + "#" + fingerprint }

const dedupSK = "E"

// markerOp creates m's marker, failing the transaction when it is already there.
func (s *Store) markerOp(app string, m Marker) Op {
	return Op{Kind: OpPut, Item: Item{PK: dedupPK(app, m.Fingerprint), SK: dedupSK, Data: []byte("{}"),
		Expires: s.now().Add(m.TTL).Unix()}, Cond: Cond{Kind: IfAbsent}}
}

// seen reports whether m's marker is live. After a failed transaction it tells a
// repeat (the marker is there) from a conflict on another item: a failed
// transaction does not say which condition failed, and DynamoDB also cancels one
// that merely collided with another on a hot counter.
func (s *Store) seen(ctx context.Context, app string, m Marker) (bool, error) {
	_, err := s.t.Get(ctx, dedupPK(app, m.Fingerprint), dedupSK)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("read marker of %s: %w", app, err)
}

// statOps adds one to each counter of keys (repeats summed: a transaction may hold
// one op per item, and keys differing only in '#' share an item).
func (s *Store) statOps(app, day string, keys []StatKey) []Op {
	exp := s.now().Add(StatRetention).Unix()
	var ops []Op
	at := map[string]int{}
	for _, k := range keys {
		sk := k.sk()
		if i, ok := at[sk]; ok {
			ops[i].Item.N++
			continue
		}
		at[sk] = len(ops)
		ops = append(ops, Op{Kind: OpAdd, Item: Item{PK: statPK(app, day, rand.IntN(StatShards)), SK: sk, N: 1, Expires: exp}})
	}
	return ops
}

// StatEvent is one de-duplicated counter event: Key counts once, the first time
// Marker is seen.
type StatEvent struct {
	Marker Marker
	Key    StatKey
}

// statChunk is how many events share one transaction: their markers and at most as
// many counters stay within MaxTransactOps.
const statChunk = 12

// AddStatsOnce counts each event of day exactly once however often it is sent:
// markers and counters go in one transaction per chunk of events. A chunk that
// conflicts holds a repeat (a resent batch), so its events are then written one
// transaction each, and an event whose marker is there is skipped. It returns how
// many events were counted now; on error, the ones counted stay counted and a resend
// counts only the rest.
func (s *Store) AddStatsOnce(ctx context.Context, app, day string, evs []StatEvent) (int, error) {
	// A repeat inside the batch is a duplicate, and would put two ops on one marker.
	uniq := make([]StatEvent, 0, len(evs))
	dup := map[string]bool{}
	for _, ev := range evs {
		if !dup[ev.Marker.Fingerprint] {
			dup[ev.Marker.Fingerprint] = true
			uniq = append(uniq, ev)
		}
	}
	counted := 0
	for chunk := range slices.Chunk(uniq, statChunk) {
		ops := make([]Op, 0, 2*len(chunk))
		keys := make([]StatKey, 0, len(chunk))
		for _, ev := range chunk {
			ops = append(ops, s.markerOp(app, ev.Marker))
			keys = append(keys, ev.Key)
		}
		err := s.t.Transact(ctx, append(ops, s.statOps(app, day, keys)...))
		if err == nil {
			counted += len(chunk)
			continue
		}
		if !errors.Is(err, ErrConflict) {
			return counted, fmt.Errorf("count stats of %s: %w", app, err)
		}
		for _, ev := range chunk {
			fresh, err := s.addStatOnce(ctx, app, day, ev)
			if err != nil {
				return counted, err
			}
			if fresh {
				counted++
			}
		}
	}
	return counted, nil
}

// addStatOnce counts one event unless its marker is there.
func (s *Store) addStatOnce(ctx context.Context, app, day string, ev StatEvent) (bool, error) {
	for range maxRetries {
		err := s.t.Transact(ctx, append([]Op{s.markerOp(app, ev.Marker)}, s.statOps(app, day, []StatKey{ev.Key})...))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, ErrConflict) {
			return false, fmt.Errorf("count stat of %s: %w", app, err)
		}
		if dup, err := s.seen(ctx, app, ev.Marker); err != nil || dup {
			return false, err
		}
	}
	return false, fmt.Errorf("count stat of %s: %w after %d attempts", app, ErrConflict, maxRetries)
}

// DeviceEvent is one device report, written in one transaction: its marker, its
// counters and the device record with the adoption move and failure count its
// change implies. A crash or a lost answer thus leaves all of it or none, and the
// resent report is recognized by its marker only when it was counted.
type DeviceEvent struct {
	Marker Marker    // zero: not de-duplicated (the report cannot be told from a repeat)
	Day    string    // of the counters; "" = today
	Stats  []StatKey // each counts one
	// Once is a second marker (e.g. once per device and version): OnceStats count
	// only the first time it is seen; a repeat of it still counts Stats.
	Once      Marker
	OnceStats []StatKey

	Device  string // "" = no device record to write
	Install string // version the device now runs (moves the adoption counters)
	Fail    string // version the device failed: failure memory and the version's failure count
	// Mutate changes the record further; it may return ErrUnchanged to skip the
	// device write (the rest is still written).
	Mutate func(d *release.Device) error
}

// EventResult says what RecordEvent did.
type EventResult struct {
	Duplicate bool           // the marker was there: counted before, nothing written
	OnceFirst bool           // Once was new: OnceStats were counted
	Device    release.Device // the record as written (or as read, when unchanged)
}

// RecordEvent writes ev in one transaction, retrying when another writer changed
// the device record (or took Once) first. It is the one writer of device records:
// when the recorded version changes, the app's adoption counters move in the same
// transaction (old version -1, new +1) under the record's revision, so no path can
// move a device without moving its count. Records expire DeviceTTL after the last
// write.
func (s *Store) RecordEvent(ctx context.Context, app string, ev DeviceEvent) (EventResult, error) {
	what := "event of " + app
	if ev.Device != "" {
		what = "device " + app + "/" + ev.Device
	}
	for range maxRetries {
		var res EventResult
		var ops []Op
		if ev.Marker.set() {
			ops = append(ops, s.markerOp(app, ev.Marker))
		}
		stats := slices.Clone(ev.Stats)
		if ev.Once.set() {
			seen, err := s.seen(ctx, app, ev.Once)
			if err != nil {
				return res, err
			}
			if !seen {
				ops = append(ops, s.markerOp(app, ev.Once))
				stats = append(stats, ev.OnceStats...)
				res.OnceFirst = true
			}
		}
		day := ev.Day
		if day == "" {
			day = Day(s.now())
		}
		ops = append(ops, s.statOps(app, day, stats)...)
		plain := false // the device record alone: one plain write
		if ev.Device != "" {
			d, dops, err := s.deviceOps(ctx, app, ev)
			if err != nil {
				return res, err
			}
			res.Device = d
			plain = len(ops) == 0 && len(dops) == 1
			ops = append(ops, dops...)
		}
		var err error
		switch {
		case len(ops) == 0:
			return res, nil
		case plain:
			_, err = s.t.Put(ctx, ops[0].Item, ops[0].Cond)
		default:
			err = s.t.Transact(ctx, ops)
		}
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, ErrConflict) {
			return res, fmt.Errorf("write %s: %w", what, err)
		}
		if ev.Marker.set() {
			dup, err := s.seen(ctx, app, ev.Marker)
			if err != nil {
				return res, err
			}
			if dup {
				return EventResult{Duplicate: true}, nil
			}
		}
		// Another report for this device (or Once's first) got there first: start over from it.
	}
	return EventResult{}, fmt.Errorf("write %s: %w after %d attempts", what, ErrConflict, maxRetries)
}

// deviceOps reads the device record, applies ev to it and returns the writes: the
// record under its revision, the adoption move, the failure count. None when
// Mutate says unchanged.
func (s *Store) deviceOps(ctx context.Context, app string, ev DeviceEvent) (release.Device, []Op, error) {
	pk := devPK(app, ev.Device)
	cur, err := getDoc[release.Device](ctx, s.t, pk, "D")
	if err != nil && !errors.Is(err, ErrNotFound) {
		return cur.V, nil, fmt.Errorf("read device %s/%s: %w", app, ev.Device, err)
	}
	if cur.Rev == 0 {
		cur.V = release.Device{AppID: app, ID: ev.Device}
	}
	d, counted := cur.V, cur.V.Version
	now := s.now()
	until := now.Add(FailureMemory).Unix()
	if ev.Install != "" {
		d.Version = ev.Install
	}
	if ev.Fail != "" {
		d.Failed = maps.Clone(d.Failed)
		if d.Failed == nil {
			d.Failed = map[string]int64{}
		}
		d.Failed[ev.Fail] = until
	}
	if ev.Mutate != nil {
		if err := ev.Mutate(&d); err != nil {
			if errors.Is(err, ErrUnchanged) {
				return d, nil, nil
			}
			return d, nil, err
		}
	}
	for v, u := range d.Failed { // drop expired failure memory
		if u <= now.Unix() {
			delete(d.Failed, v)
		}
	}
	d.SeenAt = now.UTC()
	op, err := putOp(pk, "D", d, Cond{Kind: IfRev, Rev: cur.Rev}, now.Add(DeviceTTL).Unix())
	if err != nil {
		return d, nil, err
	}
	ops := []Op{op}
	if d.Version != counted {
		ops = append(ops, adoptionMove(app, counted, d.Version)...)
	}
	if ev.Fail != "" {
		// Counts failure reports, so checks know when reading device records is worth it.
		ops = append(ops, Op{Kind: OpAdd, Item: Item{PK: appPK(app), SK: "FAILS#" + ev.Fail, N: 1, Expires: until}})
	}
	return d, ops, nil
}
