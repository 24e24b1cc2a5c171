package wire

// CheckRequest is the body of POST /apps/{appId}/channels/check-device; every
// field is a string (a wrong type is a 400).
type CheckRequest struct {
	DeviceID        string `json:"device_id"`
	ChannelName     string `json:"channel_name"`
	Platform        string `json:"platform"`
	PlatformVersion string `json:"platform_version,omitempty"`
	BinaryVersion   string `json:"binary_version"`
	CurrentUpdateID string `json:"current_update_id"`
	SnapshotID      string `json:"snapshot_id,omitempty"` // older sketch's name for CurrentUpdateID
}

// CheckPatch is our extension for the Go client: a tree patch (shared/delta) from
// the device's current version, offered only when it exists for exactly that version.
type CheckPatch struct {
	From   string `json:"from"`
	URL    string `json:"url"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// CheckUpdate is the compatible-update answer (a superset of both sketches).
type CheckUpdate struct {
	Available        bool         `json:"available"`
	Compatible       bool         `json:"compatible"`
	UpdateID         string       `json:"update_id"`
	Snapshot         string       `json:"snapshot"`
	Version          string       `json:"version"`
	URL              string       `json:"url"`
	ManifestURL      string       `json:"manifest_url"`
	ArtifactURL      string       `json:"artifact_url"`
	Integrity        string       `json:"integrity"`
	SHA256           string       `json:"sha256"`
	Size             int64        `json:"size"`
	Mandatory        bool         `json:"mandatory"`
	MinBinaryVersion string       `json:"min_binary_version"`
	Patches          []CheckPatch `json:"patches,omitempty"`
}

// CheckIncompatible answers that an update exists but the binary is too old; no URLs.
type CheckIncompatible struct {
	Available        bool   `json:"available"`
	Compatible       bool   `json:"compatible"`
	UpdateID         string `json:"update_id"`
	Version          string `json:"version"`
	MinBinaryVersion string `json:"min_binary_version"`
}

// CheckNoUpdate answers that the device keeps what it runs, or, with
// RevertToBuiltin, that it goes back to the bundle inside the app binary.
type CheckNoUpdate struct {
	Available       bool `json:"available"`
	Compatible      bool `json:"compatible"`
	RevertToBuiltin bool `json:"revert_to_builtin,omitempty"`
}
