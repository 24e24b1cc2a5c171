package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/otakit/ota/shared/release"
)

// Key schema (single table). PK/SK:
//   APPS                  / <app>                          App
//   APP#<app>             / REL#<version>                  Release
//   APP#<app>             / CH#<channel>                   Channel
//   APP#<app>             / CHH#<channel>#<unixnano>       ChannelEvent (history)
//   APP#<app>             / PATCH#<kind>#<from>#<to>       Patch
//   APP#<app>             / SEQ#<name>                     counter (build numbers, channel ids)
//   DEV#<app>#<device>    / D                              Device
//   KEYS                  / <sha256 of key>                APIKey
//   STAT#<app>#<day>#<shard> / <channel>#<version>#<action> counter
//   AUD#<app>             / <unixnano>#<rand>              AuditEntry
//   APP#<app>             / FAILS#<version>                counter of failure reports (expires)
//   APP#<app>             / RO#<channel>#<salt>#att|fail    rollout install attempts / failures
//   ADOPT#<app>#<shard>   / <version>                      devices whose recorded version is this one (summed over shards)
//   APP#<app>             / ADOPT#<version>                the same, before sharding (still read)
//   DEDUP#<app>#<hash>    / E                              stats de-duplication marker (expires)
//   APP#<app>             / DEVCH                          counter of devices with a channel override

func appPK(app string) string { return "APP#" + app }

// ---- apps

// CreateApp stores a new app; ErrExists if the id is taken.
func (s *Store) CreateApp(ctx context.Context, a release.App) error {
	_, err := putDoc(ctx, s.t, "APPS", a.ID, a, Cond{Kind: IfAbsent}, 0)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("app %s: %w", a.ID, ErrExists)
	}
	return err
}

// GetApp returns an app or ErrNotFound.
func (s *Store) GetApp(ctx context.Context, id string) (release.App, error) {
	d, err := getDoc[release.App](ctx, s.t, "APPS", id)
	return d.V, err
}

// ListApps returns every app, sorted by id.
func (s *Store) ListApps(ctx context.Context) ([]release.App, error) {
	return queryDocs[release.App](ctx, s.t, Query{PK: "APPS"})
}

// UpdateApp changes an existing app.
func (s *Store) UpdateApp(ctx context.Context, id string, fn func(*release.App) error) (release.App, error) {
	return update(ctx, s.t, "APPS", id, 0, func(a *release.App, ok bool) error {
		if !ok {
			return fmt.Errorf("app %s: %w", id, ErrNotFound)
		}
		return fn(a)
	})
}

// NextSeq returns the next value of a per-app sequence (1, 2, ...).
func (s *Store) NextSeq(ctx context.Context, app, name string) (int64, error) {
	return s.t.Add(ctx, appPK(app), "SEQ#"+name, 1, 0)
}

// BumpSeq adds delta to a per-app sequence and returns the new value.
func (s *Store) BumpSeq(ctx context.Context, app, name string, delta int64) (int64, error) {
	return s.t.Add(ctx, appPK(app), "SEQ#"+name, delta, 0)
}

// ---- releases

// CreateRelease stores a new release record; ErrExists if the version is taken.
func (s *Store) CreateRelease(ctx context.Context, r release.Release) error {
	_, err := putDoc(ctx, s.t, appPK(r.AppID), "REL#"+r.Version, r, Cond{Kind: IfAbsent}, 0)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("release %s@%s: %w", r.AppID, r.Version, ErrExists)
	}
	return err
}

// GetRelease returns one release or ErrNotFound.
func (s *Store) GetRelease(ctx context.Context, app, version string) (release.Release, error) {
	d, err := getDoc[release.Release](ctx, s.t, appPK(app), "REL#"+version)
	return d.V, err
}

// ListReleases returns an app's releases, newest first.
func (s *Store) ListReleases(ctx context.Context, app string) ([]release.Release, error) {
	rs, err := queryDocs[release.Release](ctx, s.t, Query{PK: appPK(app), Prefix: "REL#"})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(rs, func(i, j int) bool {
		if !rs[i].CreatedAt.Equal(rs[j].CreatedAt) {
			return rs[i].CreatedAt.After(rs[j].CreatedAt)
		}
		return rs[i].BuildNumber > rs[j].BuildNumber
	})
	return rs, nil
}

// UpdateRelease changes an existing release under a revision condition.
func (s *Store) UpdateRelease(ctx context.Context, app, version string, fn func(*release.Release) error) (release.Release, error) {
	return update(ctx, s.t, appPK(app), "REL#"+version, 0, func(r *release.Release, ok bool) error {
		if !ok {
			return fmt.Errorf("release %s@%s: %w", app, version, ErrNotFound)
		}
		return fn(r)
	})
}

// DeleteRelease removes a release record.
func (s *Store) DeleteRelease(ctx context.Context, app, version string) error {
	return s.t.Delete(ctx, appPK(app), "REL#"+version, Cond{Kind: IfExists})
}

// ---- channels

// ChannelEvent is one entry of a channel's history.
type ChannelEvent struct {
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor,omitempty"`
	Action  string          `json:"action"`
	Channel release.Channel `json:"channel"`
}

// GetChannel returns one channel or ErrNotFound.
func (s *Store) GetChannel(ctx context.Context, app, name string) (release.Channel, error) {
	d, err := getDoc[release.Channel](ctx, s.t, appPK(app), "CH#"+name)
	return d.V, err
}

// ListChannels returns an app's channels sorted by name.
func (s *Store) ListChannels(ctx context.Context, app string) ([]release.Channel, error) {
	return queryDocs[release.Channel](ctx, s.t, Query{PK: appPK(app), Prefix: "CH#"})
}

// UpdateChannel changes (or creates) a channel and appends the new state to its
// history in one transaction, so concurrent writers serialize on the channel's
// revision and history never disagrees with the channel. A write that leaves an
// existing channel as it was (a re-run release or rollout command) writes nothing:
// history holds changes only, so it never pushes rollback targets out of reach.
func (s *Store) UpdateChannel(ctx context.Context, app, name, actor, action string, fn func(c *release.Channel, exists bool) error) (release.Channel, error) {
	pk := appPK(app)
	for range maxRetries {
		d, err := getDoc[release.Channel](ctx, s.t, pk, "CH#"+name)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return d.V, err
		}
		exists := d.Rev != 0
		if !exists {
			d.V = release.Channel{AppID: app, Name: name, AllowSelfSet: false, Public: false}
			id, err := s.NextSeq(ctx, app, "channel")
			if err != nil {
				return d.V, err
			}
			d.V.ID = id
		}
		// Encoded, not copied: fn may change what the channel's pointers point at.
		before, err := json.Marshal(d.V)
		if err != nil {
			return d.V, fmt.Errorf("encode channel %s/%s: %w", app, name, err)
		}
		if err := fn(&d.V, exists); err != nil {
			if errors.Is(err, ErrUnchanged) {
				return d.V, nil
			}
			return d.V, err
		}
		if exists {
			after, err := json.Marshal(d.V)
			if err != nil {
				return d.V, fmt.Errorf("encode channel %s/%s: %w", app, name, err)
			}
			if bytes.Equal(before, after) {
				return d.V, nil
			}
		}
		now := s.now().UTC()
		d.V.UpdatedAt = now
		chOp, err := putOp(pk, "CH#"+name, d.V, Cond{Kind: IfRev, Rev: d.Rev}, 0)
		if err != nil {
			return d.V, err
		}
		hOp, err := putOp(pk, fmt.Sprintf("CHH#%s#%019d", name, now.UnixNano()), ChannelEvent{At: now, Actor: actor, Action: action, Channel: d.V}, Cond{Kind: IfAbsent}, 0)
		if err != nil {
			return d.V, err
		}
		err = s.t.Transact(ctx, []Op{chOp, hOp})
		if errors.Is(err, ErrConflict) {
			continue
		}
		return d.V, err
	}
	return release.Channel{}, fmt.Errorf("channel %s/%s: %w after %d attempts", app, name, ErrConflict, maxRetries)
}

// ChannelHistory returns a channel's events, newest first.
func (s *Store) ChannelHistory(ctx context.Context, app, name string, limit int) ([]ChannelEvent, error) {
	return queryDocs[ChannelEvent](ctx, s.t, Query{PK: appPK(app), Prefix: "CHH#" + name + "#", Desc: true, Limit: limit})
}

// DeleteChannel removes a channel (its history stays).
func (s *Store) DeleteChannel(ctx context.Context, app, name string) error {
	return s.t.Delete(ctx, appPK(app), "CH#"+name, Cond{Kind: IfExists})
}

// ---- devices

func devPK(app, id string) string { return "DEV#" + app + "#" + id }

// DeviceTTL is how long an idle device record (and its failure memory) is kept.
const DeviceTTL = 90 * 24 * time.Hour

// GetDevice returns a device or ErrNotFound.
func (s *Store) GetDevice(ctx context.Context, app, id string) (release.Device, error) {
	d, err := getDoc[release.Device](ctx, s.t, devPK(app, id), "D")
	return d.V, err
}

// UpdateDevice changes (or creates) a device record through RecordEvent, so the
// adoption counters follow any change of the recorded version. fn may return
// ErrUnchanged to skip the write.
func (s *Store) UpdateDevice(ctx context.Context, app, id string, fn func(d *release.Device) error) (release.Device, error) {
	res, err := s.RecordEvent(ctx, app, DeviceEvent{Device: id, Mutate: fn})
	return res.Device, err
}

// devChannelsSK counts an app's devices with a server-side channel override, so that
// checks read device records only for apps that have some.
const devChannelsSK = "DEVCH"

// SetDeviceChannel sets (channel != "") or clears (channel == "") a device's
// server-side channel override and returns the previous one. Clearing never creates
// a device record. The app's override count is raised before the device write and
// lowered after it, so an interrupted call can only overcount (a wasted device read
// on checks), never hide an override.
func (s *Store) SetDeviceChannel(ctx context.Context, app, device, channel string) (string, error) {
	pk := appPK(app)
	if channel != "" {
		if _, err := s.t.Add(ctx, pk, devChannelsSK, 1, 0); err != nil {
			return "", fmt.Errorf("count channel override of %s/%s: %w", app, device, err)
		}
	}
	var prev string
	_, err := s.UpdateDevice(ctx, app, device, func(d *release.Device) error {
		prev = d.Channel
		if d.Channel == channel {
			return ErrUnchanged
		}
		d.Channel = channel
		return nil
	})
	if err != nil {
		err = fmt.Errorf("set channel override of %s/%s: %w", app, device, err)
	}
	// One override gone, or the early count was not needed (already set, or failed).
	if (channel == "" && err == nil && prev != "") || (channel != "" && (err != nil || prev != "")) {
		if _, aerr := s.t.Add(ctx, pk, devChannelsSK, -1, 0); aerr != nil && err == nil {
			err = fmt.Errorf("uncount channel override of %s/%s: %w", app, device, aerr)
		}
	}
	return prev, err
}

// DeviceChannelOverrides returns how many devices of app may have a server-side
// channel override: 0 means none has one. Device records that expire keep their
// count (an overcount only costs device reads).
func (s *Store) DeviceChannelOverrides(ctx context.Context, app string) (int64, error) {
	it, err := s.t.Get(ctx, appPK(app), devChannelsSK)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count channel overrides of %s: %w", app, err)
	}
	return it.N, nil
}

// ---- patches

// Patch records a precomputed patch between two releases of an app.
type Patch struct {
	AppID   string    `json:"app_id"`
	Kind    string    `json:"kind"` // "ota" (our tree format) or "flux"
	From    string    `json:"from"`
	To      string    `json:"to"`
	Key     string    `json:"key"` // blob key
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
}

func patchSK(kind, from, to string) string { return "PATCH#" + kind + "#" + from + "#" + to }

// PutPatch records a patch (idempotent: same pair, same content-addressed key).
func (s *Store) PutPatch(ctx context.Context, p Patch) error {
	_, err := putDoc(ctx, s.t, appPK(p.AppID), patchSK(p.Kind, p.From, p.To), p, Cond{}, 0)
	return err
}

// GetPatch returns a patch record or ErrNotFound.
func (s *Store) GetPatch(ctx context.Context, app, kind, from, to string) (Patch, error) {
	d, err := getDoc[Patch](ctx, s.t, appPK(app), patchSK(kind, from, to))
	return d.V, err
}

// ListPatches returns an app's patches of one kind.
func (s *Store) ListPatches(ctx context.Context, app, kind string) ([]Patch, error) {
	return queryDocs[Patch](ctx, s.t, Query{PK: appPK(app), Prefix: "PATCH#" + kind + "#"})
}

// DeletePatch removes a patch record.
func (s *Store) DeletePatch(ctx context.Context, app, kind, from, to string) error {
	return s.t.Delete(ctx, appPK(app), patchSK(kind, from, to), Cond{})
}

// ---- audit

// AuditEntry is one management action.
type AuditEntry struct {
	At     time.Time `json:"at"`
	AppID  string    `json:"app_id,omitempty"`
	KeyID  string    `json:"key_id"`
	Action string    `json:"action"`
	Target string    `json:"target,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// Audit appends an entry; app "" files it under the server-wide log.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.now().UTC()
	}
	sk := fmt.Sprintf("%019d#%s", e.At.UnixNano(), randHex(4))
	_, err := putDoc(ctx, s.t, "AUD#"+e.AppID, sk, e, Cond{Kind: IfAbsent}, 0)
	return err
}

// ListAudit returns an app's audit entries (or the server-wide ones for ""), newest first.
func (s *Store) ListAudit(ctx context.Context, app string, limit int) ([]AuditEntry, error) {
	return queryDocs[AuditEntry](ctx, s.t, Query{PK: "AUD#" + app, Desc: true, Limit: limit})
}

// ---- failure memory

// FailureMemory is how long a device is not offered a version it failed to install or boot.
const FailureMemory = 30 * 24 * time.Hour

// RecordFailure remembers that device failed version and counts the failure on the
// version (in the same transaction), so checks know when reading device records is
// worth it.
func (s *Store) RecordFailure(ctx context.Context, app, device, version string) error {
	if _, err := s.RecordEvent(ctx, app, DeviceEvent{Device: device, Fail: version}); err != nil {
		return fmt.Errorf("record failure: %w", err)
	}
	return nil
}

// FailureCount returns how many failures were recorded for version (live memory only).
func (s *Store) FailureCount(ctx context.Context, app, version string) (int64, error) {
	it, err := s.t.Get(ctx, appPK(app), "FAILS#"+version)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return it.N, err
}

// ---- adoption

// AdoptShards spreads each app's adoption counters over several partitions: every
// device moving to a new release bumps the same version's counter inside a
// transaction, and transactions on one item conflict with each other.
const AdoptShards = StatShards

func adoptPK(app string, shard int) string { return fmt.Sprintf("ADOPT#%s#%d", app, shard) }

// legacyAdoptPrefix is where counters lived before sharding (APP#<app> / ADOPT#<v>);
// they are still summed so existing counts survive the change.
const legacyAdoptPrefix = "ADOPT#"

// adoptionMove is the counter half of a device's move from version prev to next
// ("" = none): each side on a random shard, since only the sum over shards counts.
func adoptionMove(app, prev, next string) []Op {
	var ops []Op
	for _, m := range []struct {
		version string
		delta   int64
	}{{prev, -1}, {next, 1}} {
		if m.version != "" {
			ops = append(ops, Op{Kind: OpAdd, Item: Item{PK: adoptPK(app, rand.IntN(AdoptShards)), SK: m.version, N: m.delta}})
		}
	}
	return ops
}

// RecordInstall notes that device now runs version; the adoption counters move
// with it. Repeated reports of the same version change nothing but the record's
// last-seen time.
func (s *Store) RecordInstall(ctx context.Context, app, device, version string) error {
	if _, err := s.RecordEvent(ctx, app, DeviceEvent{Device: device, Install: version}); err != nil {
		return fmt.Errorf("record install: %w", err)
	}
	return nil
}

// Adoption is how many devices last reported running a version.
type Adoption struct {
	Version string `json:"version"`
	Devices int64  `json:"devices"`
}

// ListAdoption returns the device count per version, sorted by version (versions
// with none left out).
func (s *Store) ListAdoption(ctx context.Context, app string) ([]Adoption, error) {
	sum := map[string]int64{}
	for shard := range AdoptShards {
		items, err := s.t.Query(ctx, Query{PK: adoptPK(app, shard)})
		if err != nil {
			return nil, fmt.Errorf("read adoption of %s: %w", app, err)
		}
		for _, it := range items {
			sum[it.SK] += it.N
		}
	}
	legacy, err := s.t.Query(ctx, Query{PK: appPK(app), Prefix: legacyAdoptPrefix})
	if err != nil {
		return nil, fmt.Errorf("read adoption of %s: %w", app, err)
	}
	for _, it := range legacy {
		sum[strings.TrimPrefix(it.SK, legacyAdoptPrefix)] += it.N
	}
	var out []Adoption
	for _, v := range slices.Sorted(maps.Keys(sum)) {
		if sum[v] > 0 {
			out = append(out, Adoption{Version: v, Devices: sum[v]})
		}
	}
	return out, nil
}

// ---- rollout health

func rolloutSK(channel, salt, what string) string { return "RO#" + channel + "#" + salt + "#" + what }

// AddRolloutOutcome counts an install attempt and/or a failure of a channel's
// current rollout, keyed by the rollout's salt so a new rollout starts from zero; it
// returns the running totals. A failure without an attempt is a device that already
// counted its install and failed later (a crash of the running version).
func (s *Store) AddRolloutOutcome(ctx context.Context, app, channel, salt string, attempt, failed bool) (attempts, failures int64, err error) {
	pk := appPK(app)
	one := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}
	// Adding 0 reads the current value atomically in the same shape.
	if attempts, err = s.t.Add(ctx, pk, rolloutSK(channel, salt, "att"), one(attempt), 0); err != nil {
		return 0, 0, err
	}
	delta := one(failed)
	failures, err = s.t.Add(ctx, pk, rolloutSK(channel, salt, "fail"), delta, 0)
	return attempts, failures, err
}

// RolloutOutcomes returns a rollout's totals.
func (s *Store) RolloutOutcomes(ctx context.Context, app, channel, salt string) (attempts, failures int64, err error) {
	get := func(what string) (int64, error) {
		it, err := s.t.Get(ctx, appPK(app), rolloutSK(channel, salt, what))
		if errors.Is(err, ErrNotFound) {
			return 0, nil
		}
		return it.N, err
	}
	if attempts, err = get("att"); err != nil {
		return
	}
	failures, err = get("fail")
	return
}
