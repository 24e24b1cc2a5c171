package wire

import (
	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// AppView is an app as the management API shows it: the secrets are left out and
// only whether they are set is told.
type AppView struct {
	release.App
	FluxSecret      string `json:"flux_secret,omitempty"`       // never echoed back
	DeviceTokenHash string `json:"device_token_hash,omitempty"` // never echoed back
	FluxSecretSet   bool   `json:"flux_secret_set"`
	Protected       bool   `json:"protected"` // check-device needs a device token
}

// ViewApp hides a's secrets.
func ViewApp(a release.App) AppView {
	return AppView{App: a, FluxSecretSet: a.FluxSecret != "", Protected: a.DeviceTokenHash != ""}
}

// AppInput is the body of POST /v1/apps and PATCH /v1/apps/{app}. A nil field is
// left unchanged; omitempty only shapes what clients send.
type AppInput struct {
	ID             string  `json:"id,omitempty"`
	Name           *string `json:"name,omitempty"`
	DefaultChannel *string `json:"default_channel,omitempty"`
	FluxSecret     *string `json:"flux_secret,omitempty"`
	DeviceToken    *string `json:"device_token,omitempty"` // "" makes the app public again
	// NativeUpdateSignature is "pss", "pkcs1" or "" (back to the default); a
	// pointer, so that "" is sent.
	NativeUpdateSignature *string `json:"native_update_signature,omitempty"`
}

// AppsAnswer is the answer of GET /v1/apps: the apps the key may see.
type AppsAnswer struct {
	Apps []AppView `json:"apps"`
}

// ReleasesAnswer is the answer of GET /v1/apps/{app}/releases.
type ReleasesAnswer struct {
	Releases []release.Release `json:"releases"`
}

// CreateReleaseAnswer is the answer of POST /v1/apps/{app}/releases: the pending
// release and where to upload its bundle.
type CreateReleaseAnswer struct {
	Release release.Release `json:"release"`
	Upload  *blob.Upload    `json:"upload"`
}

// ReleaseAnswer is the answer of POST .../releases/{version}/complete.
type ReleaseAnswer struct {
	Release release.Release `json:"release"`
}

// ReleaseDetail is the answer of GET .../releases/{version}: the release and the
// patches that lead to it.
type ReleaseDetail struct {
	Patches []PatchView     `json:"patches"`
	Release release.Release `json:"release"`
}

// PatchView is a patch from one release to another, with a download URL.
type PatchView struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	URL    string `json:"url,omitempty"`
}

// ChannelsAnswer is the answer of GET /v1/apps/{app}/channels.
type ChannelsAnswer struct {
	Channels []release.Channel `json:"channels"`
}

// ChannelDetail is the answer of GET .../channels/{channel}: the channel and its
// recent history.
type ChannelDetail struct {
	Channel release.Channel      `json:"channel"`
	History []store.ChannelEvent `json:"history"`
}

// ChannelInput is the body of PUT /v1/apps/{app}/channels/{channel}. A nil field
// is left unchanged.
type ChannelInput struct {
	Version      *string `json:"version,omitempty"` // stable release
	Public       *bool   `json:"public,omitempty"`
	AllowSelfSet *bool   `json:"allow_self_set,omitempty"`
	NoEmulator   *bool   `json:"no_emulator,omitempty"`
	NoDevBuild   *bool   `json:"no_dev_build,omitempty"`
	// Automatic rollout halt: failed/attempted installs above MaxFailureRate after MinAttempts.
	MaxFailureRate *float64 `json:"max_failure_rate,omitempty"`
	MinAttempts    *int64   `json:"min_attempts,omitempty"`
}

// KeyInput is the body of POST /v1/keys.
type KeyInput struct {
	Name  string   `json:"name"`
	Apps  []string `json:"apps"` // app ids, or "*"
	Admin bool     `json:"admin"`
}

// KeysAnswer is the answer of GET /v1/keys (hashes left out).
type KeysAnswer struct {
	Keys []store.APIKey `json:"keys"`
}

// CreateKeyAnswer is the answer of POST /v1/keys: the only time the secret is told.
type CreateKeyAnswer struct {
	Key    store.APIKey `json:"key"`
	Secret string       `json:"secret"`
}

// RevokeKeyAnswer is the answer of DELETE /v1/keys/{id}.
type RevokeKeyAnswer struct {
	Key       store.APIKey `json:"key"`
	RevokedAt string       `json:"revoked_at"` // RFC 3339
}
