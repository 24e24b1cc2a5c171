// Package release holds the domain (apps, releases, channels, devices) and the one
// pure decision function every protocol adapter calls.
package release

import (
	"fmt"
	"regexp"
	"time"
)

// Status is where a release is in its publish pipeline. Devices only ever see Ready.
type Status string

const (
	StatusPending Status = "pending" // record created, bytes not yet verified
	StatusReady   Status = "ready"   // verified, manifest written, visible to devices
	StatusFailed  Status = "failed"  // upload did not validate; kept so the error is visible
)

// App is one mobile app (one bundle id).
type App struct {
	ID             string `json:"id"`
	Name           string `json:"name,omitempty"`
	DefaultChannel string `json:"default_channel"`
	FluxSecret     string `json:"flux_secret,omitempty"` // HMAC secret shared with Flux clients (ships in the app anyway)
	// DeviceTokenHash protects the check-device routes: devices must send
	// "Authorization: Bearer <token>" whose SHA-256 this is. "" = public app.
	DeviceTokenHash string `json:"device_token_hash,omitempty"`
	// NativeUpdateSignature picks the scheme native-update answers carry in
	// `signature`: SigPSS, SigPKCS1, or "" (PSS when the release has it, else PKCS#1).
	// The plugin reads that one field and its versions verify different schemes.
	NativeUpdateSignature string    `json:"native_update_signature,omitempty"`
	CreatedAt             time.Time `json:"created_at"`
}

// Signature schemes an app can choose for native-update's `signature` field.
const (
	SigPSS   = "pss"   // RSASSA-PSS SHA-256, salt 32 (native-update 1.x)
	SigPKCS1 = "pkcs1" // RSASSA-PKCS1-v1_5 SHA-256 (capacitor-native-update 2.0 SecurityManager)
)

// ValidNativeUpdateSignature accepts SigPSS, SigPKCS1 or "" (the default).
func ValidNativeUpdateSignature(s string) error {
	switch s {
	case "", SigPSS, SigPKCS1:
		return nil
	}
	return fmt.Errorf("invalid native-update signature scheme %q: use %s or %s", s, SigPSS, SigPKCS1)
}

// Release is one published bundle version of an app. Version is an identity: it is
// never reused for other bytes.
type Release struct {
	AppID       string    `json:"app_id"`
	Version     string    `json:"version"`
	ID          string    `json:"id"`                 // stable opaque id (check-device "update_id")
	Platform    string    `json:"platform,omitempty"` // "" = every platform
	Status      Status    `json:"status"`
	Format      string    `json:"format,omitempty"` // "" = zip bundle; FormatChunk = opaque bytes (Flux uploads)
	Error       string    `json:"error,omitempty"`  // why a release failed validation
	SHA256      string    `json:"sha256"`           // lowercase hex of the zip bytes as served
	Size        int64     `json:"size"`
	TreeHash    string    `json:"tree_hash,omitempty"`
	Files       int       `json:"files,omitempty"`
	MinNative   string    `json:"min_native,omitempty"`
	Mandatory   bool      `json:"mandatory,omitempty"`
	Disabled    bool      `json:"disabled,omitempty"`
	Notes       string    `json:"notes,omitempty"`
	BuildNumber int64     `json:"build_number"`
	CreatedAt   time.Time `json:"created_at"`
	ReadyAt     time.Time `json:"ready_at,omitzero"`
	CreatedBy   string    `json:"created_by,omitempty"`

	// Made at publish time by the CLI: the server never holds a private key.
	Signatures Signatures `json:"signatures,omitzero"`

	// BundleKey is the object key of the bundle, with a nonce drawn when this release
	// record was created, so an upload URL of an earlier creation of the same version
	// (deleted, then published again) cannot write these bytes. "" on releases created
	// before keys had a nonce: their bundle is at bundles/<app>/<version>.zip.
	BundleKey string `json:"bundle_key,omitempty"`
	// IngestLease and PrecomputeLease are held by the one worker that validates the
	// upload, then the one that precomputes patches; an expired lease (its holder
	// died) is taken over. PrecomputedAt says patches were precomputed: it is done once.
	IngestLease     *Lease    `json:"ingest_lease,omitempty"`
	PrecomputeLease *Lease    `json:"precompute_lease,omitempty"`
	PrecomputedAt   time.Time `json:"precomputed_at,omitzero"`
}

// Lease is a claim on a release's background work, written with a conditional update.
type Lease struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

// Held reports whether the lease is still valid at now.
func (l *Lease) Held(now time.Time) bool { return l != nil && now.Before(l.Until) }

// Signatures are the publish-time integrity forms each client family reads.
type Signatures struct {
	PSS          string `json:"pss,omitempty"`           // native-update 1.x: RSA-PSS SHA-256 salt 32, base64
	PKCS1        string `json:"pkcs1,omitempty"`         // capacitor-native-update 2.0: RSA PKCS#1 v1.5 SHA-256, base64
	Flux         string `json:"flux,omitempty"`          // Flux: HMAC-SHA256 hex of the chunk
	SessionKey   string `json:"session_key,omitempty"`   // Capgo encrypted bundle: base64(IV):base64(P(aeskey))
	EncChecksum  string `json:"enc_checksum,omitempty"`  // Capgo encrypted checksum (512 hex)
	KeyID        string `json:"key_id,omitempty"`        // Capgo key_id of the public key the bundle is encrypted for
	Statement    string `json:"statement,omitempty"`     // seed app: signed JSON statement (version, sha256, minNativeVersion)
	StatementSig string `json:"statement_sig,omitempty"` // its ECDSA P-256 SHA-256 signature, base64 r||s; served as given
}

// FormatChunk marks a release whose bytes are an opaque chunk, not a zip (Flux
// bytecode uploaded through the Flux route): it has no manifest and no tree patches.
const FormatChunk = "chunk"

// Encrypted reports whether the served bytes are Capgo-encrypted.
func (r *Release) Encrypted() bool { return r.Signatures.SessionKey != "" }

// Rollout is a release being rolled out to a share of a channel's devices.
type Rollout struct {
	Version    string    `json:"version"`
	Percent    float64   `json:"percent"` // 0..100
	Salt       string    `json:"salt"`    // fixed for the life of the rollout: keeps buckets stable
	Halted     bool      `json:"halted,omitempty"`
	HaltReason string    `json:"halt_reason,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	// Install outcomes counted before the last resume: the failure rate that halts a
	// resumed rollout is measured from there, not over its whole life.
	BaseAttempts int64 `json:"base_attempts,omitempty"`
	BaseFailures int64 `json:"base_failures,omitempty"`
}

// Channel points devices at a release.
type Channel struct {
	AppID        string    `json:"app_id"`
	Name         string    `json:"name"`
	ID           int64     `json:"id"`               // numeric id (Capgo lists channels with numeric ids)
	Stable       string    `json:"stable,omitempty"` // version every device gets unless rolled out otherwise
	Builtin      bool      `json:"builtin,omitempty"`
	Rolling      *Rollout  `json:"rolling,omitempty"`
	Public       bool      `json:"public"`
	AllowSelfSet bool      `json:"allow_self_set"`
	NoEmulator   bool      `json:"no_emulator,omitempty"`
	NoDevBuild   bool      `json:"no_dev_build,omitempty"`
	Policy       Policy    `json:"policy,omitzero"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Policy sets the automatic halt of a rolling release.
type Policy struct {
	MaxFailureRate float64 `json:"max_failure_rate,omitempty"` // failed/attempted; 0 = default
	MinAttempts    int64   `json:"min_attempts,omitempty"`     // 0 = default
}

// Effective returns the policy with defaults filled in.
func (p Policy) Effective() Policy {
	if p.MaxFailureRate <= 0 {
		p.MaxFailureRate = 0.2
	}
	if p.MinAttempts <= 0 {
		p.MinAttempts = 50
	}
	return p
}

// Device is what the server remembers about one installed app.
type Device struct {
	AppID    string           `json:"app_id"`
	ID       string           `json:"id"`
	Channel  string           `json:"channel,omitempty"` // self-assigned channel override
	Version  string           `json:"version,omitempty"` // last reported running bundle
	Platform string           `json:"platform,omitempty"`
	Failed   map[string]int64 `json:"failed,omitempty"` // version -> unix expiry of the failure memory
	SeenAt   time.Time        `json:"seen_at"`
}

// FailedRecently reports whether the device failed to install or boot version and the
// memory has not expired yet.
func (d *Device) FailedRecently(version string, now time.Time) bool {
	if d == nil {
		return false
	}
	exp, ok := d.Failed[version]
	return ok && exp > now.Unix()
}

var (
	appIDRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	versionRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)
	channelRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// ValidAppID, ValidVersion and ValidChannel keep identifiers safe to put in URLs,
// object keys and store keys without escaping (native-update does not URL-encode).
func ValidAppID(s string) error { return check("app id", s, appIDRe) }
func ValidVersion(s string) error {
	if s == "builtin" || s == "latest" || s == "unknown" {
		return fmt.Errorf("version %q is reserved", s)
	}
	return check("version", s, versionRe)
}
func ValidChannel(s string) error { return check("channel", s, channelRe) }

func check(what, s string, re *regexp.Regexp) error {
	if !re.MatchString(s) {
		return fmt.Errorf("invalid %s %q: use letters, digits and . _ - (max length applies)", what, s)
	}
	return nil
}
