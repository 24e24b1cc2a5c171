package api

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
)

// Version matrix of the seed app (a self-hosted Capacitor app, repository
// Morelitea/initiative, Capgo updater in manual mode): for each revision of its update
// hook, the exact request, what the server answers, and the rule by which that
// revision reads the answer. Two lines:
//   - without statement support: installs any manifest `version` that differs from
//     its own, checking the zip against the manifest's `checksum`;
//   - with statement support: installs only when `signature` verifies (WebCrypto
//     ECDSA P-256 SHA-256, IEEE P1363 r||s, SPKI keys built into the app) over the
//     exact `statement` text, and reads version, digest and native floor from it.

const (
	seedRepo        = "Morelitea/initiative"
	seedRefPlain    = "0af4139c9aae93c67ee76ed39c214badf7c2b093" // v0.63.0: hook without statement support
	seedRefHook     = "115ae65d3142717fb37ac124be15ffd85f6ac651" // hook with statement support
	seedRefTrust    = "9dea0795b66b9f1731834f4fd29665e58bcf3a97"
	seedRefSigner   = "98e934ff0a357730bebde2b0590c93057f7d77fa"
	seedRefBackend  = "820505dcc6c9bf720aed35cc0eb45e4f568f9052"
	seedHookPath    = "frontend/src/hooks/useNativeUpdate.tsx"
	seedComparePath = "frontend/src/hooks/useDockerHubVersion.tsx"
)

var (
	seedPlainHook = clientSource{seedRepo, seedRefPlain, seedHookPath,
		"GET {serverUrl}/native/bundle/manifest, Accept: application/json; non-2xx = no update; version equal = up to date; minNativeVersion above native = store prompt; else download({url resolved against the origin, version, checksum})"}
	seedCompare = clientSource{seedRepo, seedRefPlain, seedComparePath,
		"compareVersions: the first three dot parts as Number (missing or NaN = 0)"}
	seedStatementHook = clientSource{seedRepo, seedRefHook, seedHookPath,
		"no statement or signature, or one that does not verify: nothing installed; version, sha256 and minNativeVersion read from the statement"}
	seedTrust = clientSource{seedRepo, seedRefTrust, "frontend/src/lib/otaTrust.ts",
		"verifiedStatement: importKey spki (base64) ECDSA P-256, verify SHA-256 over the statement's UTF-8 bytes, v must be 1"}
	seedSigner = clientSource{seedRepo, seedRefSigner, "frontend/scripts/sign-ota.mjs",
		"statement = JSON.stringify({v:1, version, sha256, minNativeVersion, ...}); signature = base64 ieee-p1363"}
	seedBackend = clientSource{seedRepo, seedRefBackend, "backend/app/api/v1/platform_endpoints/native.py",
		"manifest adds statement and signature only when the image has them"}
)

// seedCompareVersions is the app's compareVersions (seedCompare).
func seedCompareVersions(a, b string) int {
	num := func(v string, i int) float64 {
		parts := strings.Split(v, ".")
		if i >= len(parts) {
			return 0
		}
		n, err := strconv.ParseFloat(parts[i], 64)
		if err != nil || math.IsNaN(n) {
			return 0
		}
		return n
	}
	for i := 0; i < 3; i++ {
		if x, y := num(a, i), num(b, i); x != y {
			if x > y {
				return 1
			}
			return -1
		}
	}
	return 0
}

// seedDevice is the installed app: its running web version, native version and the
// statement keys it was built with (base64 SPKI).
type seedDevice struct {
	current, native string
	keys            []string
}

// seedOutcome is what one check ends in.
type seedOutcome struct {
	decision string // "none" | "up-to-date" | "unsigned" | "native-required" | "download"
	version  string // the version downloaded
	checksum string // the digest the updater checks the zip against
	url      string // the manifest url, still to be resolved against the origin
}

// seedReadPlain is the hook without statement support (seedPlainHook).
func seedReadPlain(status int, m map[string]any, d seedDevice) seedOutcome {
	if status < 200 || status > 299 || m == nil {
		return seedOutcome{decision: "none"}
	}
	v, _ := m["version"].(string)
	minNative, _ := m["minNativeVersion"].(string)
	switch {
	case seedCompareVersions(v, d.current) == 0:
		return seedOutcome{decision: "up-to-date"}
	case seedCompareVersions(d.native, minNative) < 0:
		return seedOutcome{decision: "native-required"}
	}
	sum, _ := m["checksum"].(string)
	u, _ := m["url"].(string)
	return seedOutcome{decision: "download", version: v, checksum: sum, url: u}
}

// seedReadStatement is the hook with statement support (seedStatementHook, seedTrust).
func seedReadStatement(t *testing.T, status int, m map[string]any, d seedDevice) seedOutcome {
	if status < 200 || status > 299 || m == nil {
		return seedOutcome{decision: "none"}
	}
	stmtText, _ := m["statement"].(string)
	sigB64, _ := m["signature"].(string)
	st, ok := seedVerifiedStatement(t, stmtText, sigB64, d.keys)
	if !ok {
		return seedOutcome{decision: "unsigned"}
	}
	switch {
	case seedCompareVersions(st.Version, d.current) == 0:
		return seedOutcome{decision: "up-to-date"}
	case seedCompareVersions(d.native, st.MinNativeVersion) < 0:
		return seedOutcome{decision: "native-required"}
	}
	u, _ := m["url"].(string)
	return seedOutcome{decision: "download", version: st.Version, checksum: st.SHA256, url: u}
}

// seedVerifiedStatement is the app's verifiedStatement, with Go's ECDSA standing in
// for WebCrypto: the key is base64 SPKI, the signature base64 r||s over the exact
// statement bytes, and the statement counts only with v == 1.
func seedVerifiedStatement(t *testing.T, statement, sigB64 string, keys []string) (sign.SeedStatement, bool) {
	t.Helper()
	var st sign.SeedStatement
	if statement == "" || sigB64 == "" {
		return st, false
	}
	raw, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil || len(raw) != 64 { // WebCrypto takes P-256 signatures as 64 bytes r||s only
		return st, false
	}
	h := sha256.Sum256([]byte(statement))
	r, s := new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])
	for _, k := range keys {
		der, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			continue
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			continue
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || !ecdsa.Verify(ec, h[:], r, s) {
			continue
		}
		if json.Unmarshal([]byte(statement), &st) != nil || st.V != 1 {
			return st, false
		}
		return st, true
	}
	return st, false
}

// seedMatrixRow is one app revision against one kind of release.
type seedMatrixRow struct {
	line      string
	sources   []clientSource
	channel   string // "plain": release without statement; "signed": with one; "floor": signed, minNative 9.0.0; "empty": no release
	statement bool   // the revision with statement support
	trusted   bool   // the device was built with the publisher's statement key
	wantCode  int
	want      string // decision
}

func seedMatrix() []seedMatrixRow {
	plain := []clientSource{seedPlainHook, seedCompare}
	stmt := []clientSource{seedStatementHook, seedTrust, seedSigner, seedBackend}
	return []seedMatrixRow{
		{line: "seed app without statement support, release without statement", sources: plain, channel: "plain", wantCode: 200, want: "download"},
		{line: "seed app without statement support, release with statement (ignored)", sources: plain, channel: "signed", wantCode: 200, want: "download"},
		{line: "seed app without statement support, release above its native version", sources: plain, channel: "floor", wantCode: 200, want: "native-required"},
		{line: "seed app without statement support, channel without release", sources: plain, channel: "empty", wantCode: 404, want: "none"},
		{line: "seed app with statement support, release without statement", sources: stmt, channel: "plain", statement: true, trusted: true, wantCode: 200, want: "unsigned"},
		{line: "seed app with statement support, release with statement", sources: stmt, channel: "signed", statement: true, trusted: true, wantCode: 200, want: "download"},
		{line: "seed app with statement support, statement by a key it does not trust", sources: stmt, channel: "signed", statement: true, wantCode: 200, want: "unsigned"},
		{line: "seed app with statement support, statement floor above its native version", sources: stmt, channel: "floor", statement: true, trusted: true, wantCode: 200, want: "native-required"},
		{line: "seed app with statement support, channel without release", sources: stmt, channel: "empty", statement: true, trusted: true, wantCode: 404, want: "none"},
	}
}

func TestSeedMatrix(t *testing.T) {
	e := newTestEnv(t)
	const app = "com.example.seed"
	e.createApp(app)
	key, err := sign.GenerateP256()
	if err != nil {
		t.Fatal(err)
	}
	spki, err := sign.MarshalECPublicSPKI(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	other, err := sign.GenerateP256()
	if err != nil {
		t.Fatal(err)
	}
	otherSPKI, err := sign.MarshalECPublicSPKI(&other.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	// What `ota release --seed-statement-key` attaches (the CLI calls sign.SignSeedStatement).
	signed := func(version, minNative string, z []byte) release.Signatures {
		stmt, sig, err := sign.SignSeedStatement(key, version, sha256hex(z), minNative)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"v":1,"version":"` + version + `","sha256":"` + sha256hex(z) + `","minNativeVersion":"` + cmp.Or(minNative, "0.0.0") + `"}`
		if stmt != want {
			t.Fatalf("statement text %s, want %s", stmt, want)
		}
		return release.Signatures{Statement: stmt, StatementSig: sig}
	}
	zips := map[string][]byte{}
	for ch, in := range map[string]publish.Input{
		"plain":  {Version: "2.0.0"},
		"signed": {Version: "2.1.0"},
		"floor":  {Version: "3.0.0", MinNative: "9.0.0"},
	} {
		z := adBundleZip(t, in.Version)
		if ch != "plain" {
			in.Signatures = signed(in.Version, in.MinNative, z)
		}
		e.publishZip(app, in, z, ch)
		zips[ch] = z
	}
	e.adUpdateChannel(app, "empty", func(*release.Channel) {})

	for _, row := range seedMatrix() {
		t.Run(row.line, func(t *testing.T) {
			d := seedDevice{current: "1.0.0", native: "2.0.0", keys: []string{base64.StdEncoding.EncodeToString(otherSPKI)}}
			if row.trusted {
				d.keys = append(d.keys, base64.StdEncoding.EncodeToString(spki))
			}
			// The exact request: serverUrl (path form) + "/native/bundle/manifest", Accept JSON only.
			serverURL := e.http.URL + "/seed/" + app + "/" + row.channel + "/api/v1"
			path := strings.TrimPrefix(serverURL, e.http.URL) + "/native/bundle/manifest"
			st, m := e.seedGet(path)
			t.Logf("GET %s (Accept: application/json) -> %d; rule from %v", path, st, row.sources)
			if st != row.wantCode {
				t.Fatalf("status %d, want %d: %v", st, row.wantCode, m)
			}
			var out seedOutcome
			if row.statement {
				out = seedReadStatement(t, st, m, d)
			} else {
				out = seedReadPlain(st, m, d)
			}
			if out.decision != row.want {
				t.Fatalf("the app decides %q, want %q: %v", out.decision, row.want, m)
			}
			if out.decision != "download" {
				return
			}
			// download({url: new URL(url, origin), version, checksum}): the updater checks the bytes.
			code, _, zip := e.get(adResolveOrigin(t, serverURL, out.url))
			sum := sha256.Sum256(zip)
			if code != 200 || hex.EncodeToString(sum[:]) != out.checksum || string(zip) != string(zips[row.channel]) {
				t.Fatalf("download %d: the bytes do not match the digest the app checks (%s)", code, out.checksum)
			}
			if out.version != m["version"] {
				t.Fatalf("the app installs %s, the manifest names %v", out.version, m["version"])
			}
		})
	}
}
