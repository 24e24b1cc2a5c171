package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

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

// stateCache holds channel state for ttl. A management write in this process
// invalidates its app at once; other processes (other Lambda instances) see the
// change within ttl.
type stateCache struct {
	st  *store.Store
	ttl time.Duration

	mu     sync.Mutex
	apps   map[string]cachedApp
	chans  map[[2]string]channelState
	devChs map[string]cachedCount // app -> devices with a channel override
}

type cachedCount struct {
	n  int64
	at time.Time
}

func newStateCache(st *store.Store, ttl time.Duration) *stateCache {
	return &stateCache{st: st, ttl: ttl, apps: map[string]cachedApp{}, chans: map[[2]string]channelState{},
		devChs: map[string]cachedCount{}}
}

var errUnknownApp = errors.New("unknown app")

func (c *stateCache) app(ctx context.Context, id string) (release.App, error) {
	now := time.Now()
	c.mu.Lock()
	e, hit := c.apps[id]
	c.mu.Unlock()
	if !hit || now.Sub(e.at) >= c.ttl {
		a, err := c.st.GetApp(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			e = cachedApp{at: now}
		case err != nil:
			return release.App{}, fmt.Errorf("load app %s: %w", id, err)
		default:
			e = cachedApp{app: a, ok: true, at: now}
		}
		c.mu.Lock()
		c.apps[id] = e
		c.mu.Unlock()
	}
	if !e.ok {
		return release.App{}, errUnknownApp
	}
	return e.app, nil
}

func (c *stateCache) channel(ctx context.Context, app, name string) (channelState, error) {
	now := time.Now()
	k := [2]string{app, name}
	c.mu.Lock()
	e, hit := c.chans[k]
	c.mu.Unlock()
	if hit && now.Sub(e.at) < c.ttl {
		return e, nil
	}
	e, err := c.load(ctx, app, name)
	if err != nil {
		return e, err
	}
	e.at = now
	c.mu.Lock()
	c.chans[k] = e
	c.mu.Unlock()
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

// deviceChannels returns how many devices of app may have a server-side channel
// override (0: none, and checks need not read device records for it).
func (c *stateCache) deviceChannels(ctx context.Context, app string) (int64, error) {
	now := time.Now()
	c.mu.Lock()
	e, hit := c.devChs[app]
	c.mu.Unlock()
	if hit && now.Sub(e.at) < c.ttl {
		return e.n, nil
	}
	n, err := c.st.DeviceChannelOverrides(ctx, app)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.devChs[app] = cachedCount{n: n, at: now}
	c.mu.Unlock()
	return n, nil
}

// forgetDeviceChannels drops an app's cached override count (after a device's
// override changed in this process).
func (c *stateCache) forgetDeviceChannels(app string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.devChs, app)
}

// invalidate drops an app's cached state (after a write in this process).
func (c *stateCache) invalidate(app string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.apps, app)
	delete(c.devChs, app)
	for k := range c.chans {
		if k[0] == app {
			delete(c.chans, k)
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
