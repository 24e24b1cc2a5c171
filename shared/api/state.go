package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// stateEntries caps each of the state cache's maps. Keys come from devices (app ids,
// channel names, versions), so an unbounded map would let anyone grow otad's memory;
// past the cap the least recently used entry goes, which costs a store read at most.
const stateEntries = 4096

// channelState is what a check needs about one channel, cached per process so that
// steady-state checks cost no store reads at all.
type channelState struct {
	ch     *release.Channel            // nil: no such channel
	rels   map[string]*release.Release // the channel's stable and rolling releases
	failed map[string]bool             // versions some device reported failing
	at     time.Time
}

type cachedApp struct {
	app release.App
	ok  bool
	at  time.Time
}

type cachedCount struct {
	n  int64
	at time.Time
}

type cachedRelease struct {
	rel release.Release
	ok  bool // false: no such release
	at  time.Time
}

type cachedPatch struct {
	p  store.Patch
	ok bool // false: no such patch (yet)
	at time.Time
}

type relKey struct{ app, version string }

type patchKey struct{ app, kind, from, to string }

// stateCache holds what checks read, each entry for ttl and each map at most
// stateEntries long (an LRU: the size bound; the ttl is checked on read). A management
// write in this process invalidates its app at once; other processes (other Lambda
// instances) see the change within ttl.
type stateCache struct {
	st  *store.Store
	ttl time.Duration

	apps    *lru.Cache[string, cachedApp]
	chans   *lru.Cache[[2]string, channelState]
	devChs  *lru.Cache[string, cachedCount] // app -> devices with a channel override
	rels    *lru.Cache[relKey, cachedRelease]
	patches *lru.Cache[patchKey, cachedPatch]
}

func newLRU[K comparable, V any](n int) *lru.Cache[K, V] {
	c, err := lru.New[K, V](n)
	if err != nil {
		panic(err) // only for n <= 0
	}
	return c
}

func newStateCache(st *store.Store, ttl time.Duration) *stateCache {
	return &stateCache{st: st, ttl: ttl,
		apps:    newLRU[string, cachedApp](stateEntries),
		chans:   newLRU[[2]string, channelState](stateEntries),
		devChs:  newLRU[string, cachedCount](stateEntries),
		rels:    newLRU[relKey, cachedRelease](stateEntries),
		patches: newLRU[patchKey, cachedPatch](stateEntries),
	}
}

// entries is how many entries the cache holds in all (tests check the bound).
func (c *stateCache) entries() int {
	return c.apps.Len() + c.chans.Len() + c.devChs.Len() + c.rels.Len() + c.patches.Len()
}

// fresh reports whether an entry loaded at is still within ttl.
func (c *stateCache) fresh(at time.Time) bool { return time.Since(at) < c.ttl }

var errUnknownApp = errors.New("unknown app")

func (c *stateCache) app(ctx context.Context, id string) (release.App, error) {
	e, hit := c.apps.Get(id)
	if !hit || !c.fresh(e.at) {
		now := time.Now()
		a, err := c.st.GetApp(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			e = cachedApp{at: now}
		case err != nil:
			return release.App{}, fmt.Errorf("load app %s: %w", id, err)
		default:
			e = cachedApp{app: a, ok: true, at: now}
		}
		c.apps.Add(id, e)
	}
	if !e.ok {
		return release.App{}, errUnknownApp
	}
	return e.app, nil
}

func (c *stateCache) channel(ctx context.Context, app, name string) (channelState, error) {
	k := [2]string{app, name}
	if e, hit := c.chans.Get(k); hit && c.fresh(e.at) {
		return e, nil
	}
	now := time.Now()
	e, err := c.load(ctx, app, name)
	if err != nil {
		return e, err
	}
	e.at = now
	c.chans.Add(k, e)
	return e, nil
}

func (c *stateCache) load(ctx context.Context, app, name string) (channelState, error) {
	e := channelState{rels: map[string]*release.Release{}, failed: map[string]bool{}}
	ch, err := c.st.GetChannel(ctx, app, name)
	if errors.Is(err, store.ErrNotFound) {
		return e, nil
	}
	if err != nil {
		return e, fmt.Errorf("load channel %s/%s: %w", app, name, err)
	}
	e.ch = &ch
	versions := []string{ch.Stable}
	if ch.Rolling != nil {
		versions = append(versions, ch.Rolling.Version)
	}
	for _, v := range versions {
		if v == "" {
			continue
		}
		r, err := c.st.GetRelease(ctx, app, v)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return e, fmt.Errorf("load release %s@%s: %w", app, v, err)
		}
		e.rels[v] = &r
		n, err := c.st.FailureCount(ctx, app, v)
		if err != nil {
			return e, err
		}
		e.failed[v] = n > 0
	}
	return e, nil
}

// release returns a release record (store.ErrNotFound when there is none), cached:
// check-device and the download routes resolve device-named versions on every request.
func (c *stateCache) release(ctx context.Context, app, version string) (release.Release, error) {
	k := relKey{app, version}
	e, hit := c.rels.Get(k)
	if !hit || !c.fresh(e.at) {
		now := time.Now()
		r, err := c.st.GetRelease(ctx, app, version)
		switch {
		case errors.Is(err, store.ErrNotFound):
			e = cachedRelease{at: now}
		case err != nil:
			return release.Release{}, err
		default:
			e = cachedRelease{rel: r, ok: true, at: now}
		}
		c.rels.Add(k, e)
	}
	if !e.ok {
		return release.Release{}, store.ErrNotFound
	}
	return e.rel, nil
}

// releaseByID finds a release by its id (store.ErrNotFound when there is none). It
// lists the app's releases, so the answer is cached like release's, keyed apart from
// version names (an id is never a valid version).
func (c *stateCache) releaseByID(ctx context.Context, app, id string) (release.Release, error) {
	k := relKey{app, "id:" + id}
	e, hit := c.rels.Get(k)
	if !hit || !c.fresh(e.at) {
		now := time.Now()
		rels, err := c.st.ListReleases(ctx, app)
		if err != nil {
			return release.Release{}, err
		}
		e = cachedRelease{at: now}
		for _, r := range rels {
			if r.ID == id {
				e = cachedRelease{rel: r, ok: true, at: now}
				break
			}
		}
		c.rels.Add(k, e)
	}
	if !e.ok {
		return release.Release{}, store.ErrNotFound
	}
	return e.rel, nil
}

// errPatchMissing is store.ErrNotFound from a cached miss: the patch was asked for
// when the miss was loaded, so callers need not ask again within the ttl.
var errPatchMissing = fmt.Errorf("patch missing (cached): %w", store.ErrNotFound)

// patch returns a patch record (store.ErrNotFound when there is none; errPatchMissing
// when that answer is cached). A miss is cached too: a pair the patch budget skips
// stays missing, and each check would otherwise read it twice (here and when asking).
// A patch computed in this process drops its miss at once (forgetPatch).
func (c *stateCache) patch(ctx context.Context, app, kind, from, to string) (store.Patch, error) {
	k := patchKey{app, kind, from, to}
	if e, hit := c.patches.Get(k); hit && c.fresh(e.at) {
		if !e.ok {
			return store.Patch{}, errPatchMissing
		}
		return e.p, nil
	}
	now := time.Now()
	p, err := c.st.GetPatch(ctx, app, kind, from, to)
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.patches.Add(k, cachedPatch{at: now})
		return p, err
	case err != nil:
		return p, err
	}
	c.patches.Add(k, cachedPatch{p: p, ok: true, at: now})
	return p, nil
}

// forgetPatch drops a pair's cached answer (after computing its patch here).
func (c *stateCache) forgetPatch(app, kind, from, to string) {
	c.patches.Remove(patchKey{app, kind, from, to})
}

// deviceChannels returns how many devices of app may have a server-side channel
// override (0: none, and checks need not read device records for it).
func (c *stateCache) deviceChannels(ctx context.Context, app string) (int64, error) {
	if e, hit := c.devChs.Get(app); hit && c.fresh(e.at) {
		return e.n, nil
	}
	now := time.Now()
	n, err := c.st.DeviceChannelOverrides(ctx, app)
	if err != nil {
		return 0, err
	}
	c.devChs.Add(app, cachedCount{n: n, at: now})
	return n, nil
}

// forgetDeviceChannels drops an app's cached override count (after a device's
// override changed in this process).
func (c *stateCache) forgetDeviceChannels(app string) { c.devChs.Remove(app) }

// invalidate drops an app's cached state (after a write in this process). It walks
// the bounded maps: writes are rare next to checks.
func (c *stateCache) invalidate(app string) {
	c.apps.Remove(app)
	c.devChs.Remove(app)
	for _, k := range c.chans.Keys() {
		if k[0] == app {
			c.chans.Remove(k)
		}
	}
	for _, k := range c.rels.Keys() {
		if k.app == app {
			c.rels.Remove(k)
		}
	}
	for _, k := range c.patches.Keys() {
		if k.app == app {
			c.patches.Remove(k)
		}
	}
}

// decide resolves the channel, loads state (cached) and the device record only when
// its failure memory could matter, then calls the one decision function.
func (s *Server) decide(ctx context.Context, q release.Question) (release.Decision, error) {
	app, err := s.state.app(ctx, q.AppID)
	if err != nil {
		return release.Decision{}, err
	}
	if q.Channel == "" {
		q.Channel = app.DefaultChannel
	}
	cs, err := s.state.channel(ctx, q.AppID, q.Channel)
	if err != nil {
		return release.Decision{}, err
	}
	st := release.State{Channel: cs.ch, Releases: cs.rels, Now: s.Store.Now()}
	if q.DeviceID != "" && mayHaveFailed(q.DeviceID, cs) {
		d, err := s.Store.GetDevice(ctx, q.AppID, q.DeviceID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return release.Decision{}, err
		}
		if err == nil {
			st.Device = &d
		}
	}
	return release.Decide(q, st), nil
}

// mayHaveFailed reports whether a version this device could be offered has failure
// reports, so its device record (failure memory) is worth reading.
func mayHaveFailed(device string, cs channelState) bool {
	if cs.ch == nil {
		return false
	}
	if cs.failed[cs.ch.Stable] {
		return true
	}
	ro := cs.ch.Rolling
	return ro != nil && !ro.Halted && cs.failed[ro.Version] && release.InRollout(device, ro.Salt, ro.Percent)
}

// servesUnfailed reports whether a cached channel of app serves version without
// knowing yet that a device failed it.
func (c *stateCache) servesUnfailed(app, version string) bool {
	for _, k := range c.chans.Keys() {
		if k[0] != app {
			continue
		}
		// Peek: this scan must not reorder the LRU.
		if e, ok := c.chans.Peek(k); ok {
			if _, serves := e.rels[version]; serves && !e.failed[version] {
				return true
			}
		}
	}
	return false
}
