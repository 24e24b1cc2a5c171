package sign

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"regexp"
)

// SeedStatement is what the seed app (a self-hosted Capacitor app) installs on in its
// signed revision: it verifies the signature over the statement's exact bytes, reads
// version, digest and native floor from it, and installs nothing without it.
type SeedStatement struct {
	V                int    `json:"v"` // format version; the app accepts only 1
	Version          string `json:"version"`
	SHA256           string `json:"sha256"` // lowercase hex of the zip served
	MinNativeVersion string `json:"minNativeVersion"`
}

// SeedStatementVersion is the only statement format the app accepts.
const SeedStatementVersion = 1

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// SeedStatementText returns the statement text exactly as the app's own build script
// writes it (JavaScript's JSON.stringify: compact, fields in the order v, version,
// sha256, minNativeVersion, no HTML escaping). An empty minNative is "0.0.0": the
// app compares its native version with the field and cannot compare a missing one.
func SeedStatementText(version, sha256hex, minNative string) (string, error) {
	if version == "" {
		return "", fmt.Errorf("seed statement: empty version")
	}
	if !hex64.MatchString(sha256hex) {
		return "", fmt.Errorf("seed statement: sha256 must be 64 lowercase hex characters")
	}
	if minNative == "" {
		minNative = "0.0.0"
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(SeedStatement{V: SeedStatementVersion, Version: version, SHA256: sha256hex, MinNativeVersion: minNative}); err != nil {
		return "", fmt.Errorf("seed statement: %w", err)
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}

// SignSeedStatement makes the statement and its signature (base64 ECDSA P-256
// SHA-256, r||s) for the manifest's `statement` and `signature` fields.
func SignSeedStatement(priv *ecdsa.PrivateKey, version, sha256hex, minNative string) (statement, signature string, err error) {
	if statement, err = SeedStatementText(version, sha256hex, minNative); err != nil {
		return "", "", err
	}
	if signature, err = SignP256(priv, []byte(statement)); err != nil {
		return "", "", fmt.Errorf("seed statement: %w", err)
	}
	return statement, signature, nil
}
