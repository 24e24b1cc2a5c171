package api

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// The plugin's CryptoCipher.calcKeyId, by line.
func TestCapgoKeyIDForm(t *testing.T) {
	for _, tc := range []struct {
		plugin string
		want   capgoKeyIDForm
		why    string
	}{
		{"", capgoKeyIDNone, "no plugin_version: unknown"},
		{"garbage", capgoKeyIDNone, "unreadable"},
		{"8.40", capgoKeyIDNone, "not major.minor.patch"},
		{"4.61.0", capgoKeyIDNone, "legacy lines never send key_id"},
		{"5.9.0", capgoKeyIDNone, "5.x main line"},
		{"6.14.0", capgoKeyIDNone, "6.x main line (tag 6.14.0: no key_id in createInfoObject)"},
		{"6.27.11", capgoKeyIDNone, "last 6.x tag of the main line"},
		{"6.39.0", capgoKeyIDPrefix, "npm 6.39.0: CryptoCipher.calcKeyId substring(0, 4)"},
		{"6.42.3", capgoKeyIDFull, "npm 6.42.3: substring(0, 20)"},
		{"6.50.2", capgoKeyIDFull, "tag 6.50.2"},
		{"5.50.2", capgoKeyIDFull, "tag 5.50.1: backport with key_id"},
		{"7.0.0", capgoKeyIDNone, "7.x main line"},
		{"7.35.0-alpha.0", capgoKeyIDNone, "7.x main line pre-release"},
		{"7.36.1", capgoKeyIDNone, "tag 7.36.1: last 7.x of the main line, no key_id"},
		{"7.41.1", capgoKeyIDFull, "npm 7.41.1: backport, substring(0, 20)"},
		{"7.45.10", capgoKeyIDFull, "npm 7.45.10"},
		{"7.50.1", capgoKeyIDFull, "tag 7.50.1"},
		{"7.51.21", capgoKeyIDFull, "7.51 = 8.51 backport"},
		{"8.0.0", capgoKeyIDNone, "8.1.0 sends 8.0.0 (commit f2509156) and has no key_id; so did the 8.0.0 of commit 03f12a2c"},
		{"8.1.0", capgoKeyIDNone, "before the key id commit b70ef369"},
		{"8.2.0", capgoKeyIDPrefix, "tag 8.2.0: first 8.x, substring(0, 4) / prefix(4)"},
		{"8.40.7", capgoKeyIDPrefix, "tag 8.40.7: last with 4 characters"},
		{"8.40.8", capgoKeyIDFull, "tag 8.40.8: commit 6217a0f5 expands the id to 20 characters"},
		{"8.40.8-beta.1", capgoKeyIDFull, "pre-release suffix ignored"},
		{"v8.41.0", capgoKeyIDFull, "leading v"},
		{"8.51.14", capgoKeyIDFull, "tag 8.51.14"},
		{"10.0.0", capgoKeyIDFull, "above 8.40.7 (Capgo's own boundary): a missing key_id means no key"},
		{"8." + strings.Repeat("9", 40) + ".0", capgoKeyIDNone, "oversized"},
	} {
		if got := capgoKeyIDFormOf(tc.plugin); got != tc.want {
			t.Errorf("%q: %v, want %v (%s)", tc.plugin, got, tc.want, tc.why)
		}
	}

	for _, tc := range []struct {
		plugin, keyID string
		aware         bool
	}{
		{"7.36.1", "", false},                    // may or may not have a key
		{"7.36.1", "MIIBCgKCAQEAabcdefgh", true}, // says it has one
		{"8.2.0", "", true},                      // would have sent "MIIB"
		{"8.2.0", "MIIB", true},
		{"8.51.14", "", true},
		{"", "MIIB", true},
	} {
		aware, id := capgoKeyQuestion(tc.plugin, tc.keyID)
		if aware != tc.aware || id != tc.keyID {
			t.Errorf("capgoKeyQuestion(%q, %q) = %v %q, want %v %q", tc.plugin, tc.keyID, aware, id, tc.aware, tc.keyID)
		}
	}
}

// Encrypted checksums: hex from 5.30.0/6.30.0/7.30.0 (tag 7.30.0 is the first whose
// CryptoCipher.decryptChecksum tells hex from base64), base64 before.
func TestCapgoEncChecksum(t *testing.T) {
	hexSum := strings.Repeat("0f", 256)
	b64 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x0f}, 256))
	for _, tc := range []struct {
		plugin, in, want string
	}{
		{"7.29.0", hexSum, b64},
		{"7.27.0", hexSum, b64},
		{"7.30.0", hexSum, hexSum},
		{"7.36.1", hexSum, hexSum},
		{"6.27.11", hexSum, b64}, // also what 6.30.0 sends as plugin_version: it reads base64 too
		{"6.30.0", hexSum, hexSum},
		{"5.29.9", hexSum, b64},
		{"8.0.0", hexSum, hexSum},
		{"8.51.14", hexSum, hexSum},
		{"", hexSum, hexSum},
		{"7.29.0", b64, b64},                 // already base64 (made for an old plugin)
		{"7.29.0", hexSum[:64], hexSum[:64]}, // not an encrypted checksum
		{"7.29.0", strings.ToUpper(hexSum), strings.ToUpper(hexSum)},
	} {
		if got := capgoEncChecksum(tc.plugin, tc.in); got != tc.want {
			t.Errorf("%s %.16s…: %.16s…, want %.16s…", tc.plugin, tc.in, got, tc.want)
		}
	}
}
