// Package sign produces and checks the checksums and signatures each
// update client expects: hex and SRI digests, RSA-PSS and PKCS#1 v1.5
// signatures (native-update), Flux's HMAC, Ed25519, and Capgo's v2
// encryption. It also reads and writes the key formats those clients use.
package sign

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
)

// SHA256Hex returns the lowercase hex SHA-256 of b.
func SHA256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// SHA256HexReader hashes r to EOF and returns the lowercase hex SHA-256 and
// the number of bytes read.
func SHA256HexReader(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", n, fmt.Errorf("sha256: read: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// SRI returns the Subresource Integrity form of a raw SHA-256 digest:
// "sha256-" and standard, padded base64 (not hex, not base64url).
func SRI(sum []byte) string {
	return "sha256-" + base64.StdEncoding.EncodeToString(sum)
}

// SRIFromHex converts a hex SHA-256 (64 characters) to its SRI form.
func SRIFromHex(hexsum string) (string, error) {
	sum, err := hex.DecodeString(hexsum)
	if err != nil {
		return "", fmt.Errorf("sri: sha256 %q: %w", hexsum, err)
	}
	if len(sum) != sha256.Size {
		return "", fmt.Errorf("sri: sha256 %q has %d bytes, want %d", hexsum, len(sum), sha256.Size)
	}
	return SRI(sum), nil
}
