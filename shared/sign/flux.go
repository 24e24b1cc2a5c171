package sign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// FluxHMAC returns the Flux updater's signature of a chunk: lowercase hex
// HMAC-SHA256 keyed with the UTF-8 bytes of secret. Devices compare it
// case-sensitively, so it must stay lowercase.
func FluxHMAC(secret string, chunk []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(chunk)
	return hex.EncodeToString(mac.Sum(nil))
}
