package wire

import (
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// ChannelAnswer is the answer of every change to one channel.
type ChannelAnswer struct {
	Channel release.Channel `json:"channel"`
}

// RolloutInput is the body of PUT .../channels/{channel}/rollout.
type RolloutInput struct {
	Version string   `json:"version"`
	Percent *float64 `json:"percent"` // a pointer: a missing percent is refused, not 0
}

// RollbackInput is the body of POST .../channels/{channel}/rollback; both empty
// means the previous stable release.
type RollbackInput struct {
	To      string `json:"to,omitempty"`
	Builtin bool   `json:"builtin,omitempty"`
}

// RolloutHealth counts the installs of a channel's running rollout.
type RolloutHealth struct {
	Attempts int64 `json:"attempts"`
	Failures int64 `json:"failures"`
}

// ChannelStatus is one channel of GET /v1/apps/{app}/status.
type ChannelStatus struct {
	release.Channel
	RolloutHealth *RolloutHealth `json:"rollout_health,omitempty"`
}

// StatusAnswer is the answer of GET /v1/apps/{app}/status.
type StatusAnswer struct {
	App          AppView         `json:"app"`
	CacheSeconds float64         `json:"cache_seconds"`
	Channels     []ChannelStatus `json:"channels"`
}

// VersionStats sums the install outcomes of one version.
type VersionStats struct {
	Version     string  `json:"version"`
	Installed   int64   `json:"installed"`
	Failed      int64   `json:"failed"`
	SuccessRate float64 `json:"success_rate"` // installed / (installed + failed); 0 when none
	Crashed     int64   `json:"crashed"`      // devices whose running version crashed
}

// StatsAnswer is the answer of GET /v1/apps/{app}/stats.
type StatsAnswer struct {
	Adoption []store.Adoption  `json:"adoption"`
	Counts   []store.StatCount `json:"counts"`
	Days     []string          `json:"days"`
	Versions []VersionStats    `json:"versions"`
}

// AuditAnswer is the answer of GET /v1/apps/{app}/audit, newest first.
type AuditAnswer struct {
	Entries []store.AuditEntry `json:"entries"`
}

// CleanupInput is the body of POST /v1/apps/{app}/cleanup.
type CleanupInput struct {
	Keep   *int `json:"keep"` // a pointer: a missing keep is refused, not 0
	DryRun bool `json:"dry_run"`
	Now    bool `json:"now,omitempty"` // young objects of gone releases too; omitted, older servers see no new field
}

// CleanupAnswer is the answer of POST /v1/apps/{app}/cleanup.
type CleanupAnswer struct {
	Report publish.Report `json:"report"`
}
