package api

// Capgo adapter, encryption key ids: what each plugin version says about its key.
//
// The plugin sends key_id (the first characters of its public key's base64 body)
// only when the app has a public key, and the number of characters changed over
// time (read in CryptoCipher.calcKeyId, Android and iOS, of each line):
//
//   - 8.2.0 to 8.40.7 send 4 characters: "MIIB" for every RSA-2048 key, so the id
//     tells that the device has a key, hardly which one.
//   - 8.40.8 and later send 20 characters, enough to tell keys apart.
//   - The 7.x main line (7.0 to 7.36.1), older lines and the first 8.x releases
//     (8.0.0 alphas, 8.1.0, which sends plugin_version "8.0.0") never send key_id:
//     a device without one may or may not have a key.
//   - 5.x, 6.x and 7.x releases above minor 36 are backports of 8.x numbered after
//     the 8.x release they carry (7.51.13 is 8.51.13), with its key id: 6.39.0
//     sends 4 characters, 6.42.3, 7.41.1, 7.45.10 and 7.50.1 send 20.
//
// Capgo's own backend compares key ids only for plugins above 8.40.7 and only when
// both the device and the bundle have one, and otherwise serves the bundle. This
// server compares whatever the device sends as a prefix of the release's key id,
// which also tells 4-character devices apart from keys of another size, and reads
// a missing key_id as "no key" only for versions that would have sent one.

import (
	"encoding/base64"
	"encoding/hex"
	"regexp"
)

// capgoKeyIDForm is what a plugin version puts in key_id when the app has a key.
type capgoKeyIDForm int

const (
	capgoKeyIDNone   capgoKeyIDForm = iota // never sent: unknown whether the device has a key
	capgoKeyIDPrefix                       // the key's first 4 characters
	capgoKeyIDFull                         // the key's first 20 characters
)

func (f capgoKeyIDForm) String() string {
	return [...]string{"none", "prefix4", "full20"}[f]
}

// capgoKeyIDFormOf returns the key_id form of a plugin version ("8.40.8"; a
// pre-release suffix is ignored). Unreadable versions send none as far as we know.
func capgoKeyIDFormOf(pluginVersion string) capgoKeyIDForm {
	v, ok := parseCapgoPlugin(pluginVersion)
	major, minor, patch := v.major, v.minor, v.patch
	switch {
	case !ok:
		return capgoKeyIDNone
	case major >= 9:
		return capgoKeyIDFull
	case major == 8 && minor < 2, major < 5, major < 8 && minor <= 36:
		// 8.0/8.1 predate key ids (8.2.0 is the first to send one); 7.36.1 is the
		// last 7.x of the main line, and no 5.x/6.x backport is numbered that low.
		return capgoKeyIDNone
	case minor < 40 || minor == 40 && patch <= 7:
		return capgoKeyIDPrefix
	}
	return capgoKeyIDFull
}

// capgoKeyQuestion is what the decision gets to know of a device's key: whether
// its answer is reliable (aware) and the key id's start ("" = no key). A device
// that sends a key id has a key whatever its version; one that sends none has no
// key only if its version would have sent one.
func capgoKeyQuestion(pluginVersion, keyID string) (aware bool, id string) {
	if keyID != "" {
		return true, keyID
	}
	return capgoKeyIDFormOf(pluginVersion) != capgoKeyIDNone, ""
}

// capgoEncChecksum is the encrypted checksum in the form the plugin reads: hex
// (what `ota release --capgo-key` stores) from 5.30.0, 6.30.0 and 7.30.0, which tell
// hex from base64 by its characters; base64 of the same bytes before them, which
// read only base64 (CryptoCipher.decryptChecksum; the Capgo CLI makes the same
// split). Re-encoding needs no key. Anything but 512 hex characters is passed on.
func capgoEncChecksum(pluginVersion, checksum string) string {
	v, ok := parseCapgoPlugin(pluginVersion)
	if major, minor := v.major, v.minor; !ok || major < 5 || major > 7 || minor >= 30 || !capgoHex512.MatchString(checksum) {
		return checksum
	}
	b, _ := hex.DecodeString(checksum)
	return base64.StdEncoding.EncodeToString(b)
}

var capgoHex512 = regexp.MustCompile(`^[0-9a-f]{512}$`)
