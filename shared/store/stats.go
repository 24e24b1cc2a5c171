package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// StatShards spreads each day's counters over several partitions so a busy app does
// not hammer one DynamoDB partition; reads query every shard.
const StatShards = 8

// StatRetention is how long daily counters are kept.
const StatRetention = 400 * 24 * time.Hour

// StatKey names one counter of one day.
type StatKey struct {
	Channel string `json:"channel"`
	Version string `json:"version"`
	Action  string `json:"action"`
}

func (k StatKey) sk() string {
	clean := func(s string) string { return strings.ReplaceAll(s, "#", "_") }
	return clean(k.Channel) + "#" + clean(k.Version) + "#" + clean(k.Action)
}

func statPK(app, day string, shard int) string { return fmt.Sprintf("STAT#%s#%s#%d", app, day, shard) }

// Day formats t as a stats day (UTC).
func Day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// AddStat adds n to one counter of a day on a random shard.
func (s *Store) AddStat(ctx context.Context, app, day string, k StatKey, n int64) (int64, error) {
	exp := s.now().Add(StatRetention).Unix()
	return s.t.Add(ctx, statPK(app, day, rand.IntN(StatShards)), k.sk(), n, exp)
}

// StatCount is one summed counter.
type StatCount struct {
	Day string `json:"day"`
	StatKey
	Count int64 `json:"count"`
}

// ReadStats sums the shards of each day.
func (s *Store) ReadStats(ctx context.Context, app string, days []string) ([]StatCount, error) {
	var out []StatCount
	for _, day := range days {
		sum := map[StatKey]int64{}
		var order []StatKey
		for shard := range StatShards {
			items, err := s.t.Query(ctx, Query{PK: statPK(app, day, shard)})
			if err != nil {
				return nil, err
			}
			for _, it := range items {
				p := strings.SplitN(it.SK, "#", 3)
				if len(p) != 3 {
					continue
				}
				k := StatKey{Channel: p[0], Version: p[1], Action: p[2]}
				if _, ok := sum[k]; !ok {
					order = append(order, k)
				}
				sum[k] += it.N
			}
		}
		for _, k := range order {
			out = append(out, StatCount{Day: day, StatKey: k, Count: sum[k]})
		}
	}
	return out, nil
}

// FirstSeen records an event fingerprint and reports whether it is new; repeats
// within ttl are duplicates. It is a write of its own: what an event counts must go
// in the marker's transaction instead (AddStatsOnce, RecordEvent), or a crash
// between the two loses the event.
func (s *Store) FirstSeen(ctx context.Context, app, fingerprint string, ttl time.Duration) (bool, error) {
	exp := s.now().Add(ttl).Unix()
	_, err := s.t.Put(ctx, Item{PK: dedupPK(app, fingerprint), SK: dedupSK, Data: []byte("{}"), Expires: exp}, Cond{Kind: IfAbsent})
	if errors.Is(err, ErrConflict) {
		return false, nil
	}
	return err == nil, err
}
