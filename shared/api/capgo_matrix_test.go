package api

// The Capgo plugin version matrix: what each line of @capgo/capacitor-updater sends,
// what this server answers it, and the rule by which that line reads the answer.
// Every row names the client source it was read in: a tag of the repository
// Cap-go/capacitor-updater (Android java; iOS swift agrees unless said), or, for
// backports published to npm without a tag in the repository, the npm tarball
// @capgo/capacitor-updater@VERSION.

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/testenv"
)

// capgoLine is one row of the matrix.
type capgoLine struct {
	line   string
	plugin string         // plugin_version it sends
	keyID  capgoKeyIDForm // what it puts in key_id when the app has a publicKey
	// fields is its createInfoObject (besides key_id).
	fields []string
	// noUpdate is how it tells a no-update answer from an update.
	noUpdate func(m map[string]any) bool
	// encChecksum is the form of the encrypted checksum it reads: "hex" (5.30.0,
	// 6.30.0, 7.30.0 and later tell hex from base64) or "base64".
	encChecksum string
	// What this server answers, per situation: "update" or "blocked".
	encSameKey, encOtherKey, encNoKey, plainNoKey, plainWithKey string
	source                                                      string
}

var (
	capgoInfoFields    = []string{"platform", "device_id", "app_id", "custom_id", "version_build", "version_code", "version_os", "version_name", "plugin_version", "is_emulator", "is_prod", "defaultChannel"}
	capgoInfoFields851 = append(append([]string{}, capgoInfoFields[:11]...), "install_source", "defaultChannel")

	// "error" present = no update (6.25+, 7.x, 8.x before 8.45.11).
	capgoReadsError = func(m map[string]any) bool { _, ok := m["error"]; return ok }
	// "error" or "kind" present = no update (8.45.11 and later, their backports).
	capgoReadsErrorOrKind = func(m map[string]any) bool {
		_, e := m["error"]
		_, k := m["kind"]
		return e || k
	}
)

var capgoMatrix = []capgoLine{
	{
		line: "6.x main line (6.25-6.27)", plugin: "6.27.11", keyID: capgoKeyIDNone, fields: capgoInfoFields, noUpdate: capgoReadsError, encChecksum: "base64",
		// Never tells whether it has a key: offered whatever the channel holds, as
		// Capgo's backend does (a keyless device then fails checksum_fail, a keyed one
		// given a plain bundle fails on iOS).
		encSameKey: "update", encOtherKey: "update", encNoKey: "update", plainNoKey: "update", plainWithKey: "update",
		source: "Cap-go/capacitor-updater 6.27.11: android/.../CapgoUpdater.java createInfoObject (no key_id); " +
			"CapacitorUpdaterPlugin.java jsRes.has(\"error\"); CryptoCipherV2.java decryptChecksum: Base64.decode only. " +
			"Before 6.25 a plain zip's checksum is CRC32 (CryptoCipher.java 6.14.0), which our SHA-256 never matches",
	},
	{
		line: "6.39 backport", plugin: "6.39.0", keyID: capgoKeyIDPrefix, fields: capgoInfoFields, noUpdate: capgoReadsError, encChecksum: "hex",
		encSameKey: "update", encOtherKey: "update", encNoKey: "blocked", plainNoKey: "update", plainWithKey: "blocked",
		source: "npm @capgo/capacitor-updater@6.39.0: android/.../CryptoCipher.java calcKeyId substring(0, 4); CapgoUpdater.java key_id when set",
	},
	{
		line: "6.42+ backports (6.50, 6.51)", plugin: "6.50.1", keyID: capgoKeyIDFull, fields: capgoInfoFields851, noUpdate: capgoReadsErrorOrKind, encChecksum: "hex",
		encSameKey: "update", encOtherKey: "blocked", encNoKey: "blocked", plainNoKey: "update", plainWithKey: "blocked",
		source: "Cap-go/capacitor-updater 6.50.2 (sends plugin_version 6.50.1): android/.../CryptoCipher.java substring(0, 20), CapgoUpdater.java createInfoObject; " +
			"npm 6.42.3 CryptoCipher.java substring(0, 20)",
	},
	{
		line: "7.x before 7.30", plugin: "7.29.0", keyID: capgoKeyIDNone, fields: capgoInfoFields, noUpdate: capgoReadsError, encChecksum: "base64",
		encSameKey: "update", encOtherKey: "update", encNoKey: "update", plainNoKey: "update", plainWithKey: "update",
		source: "Cap-go/capacitor-updater 7.29.0: android/.../CryptoCipher.java decryptChecksum Base64.decode only (hex detection from tag 7.30.0); " +
			"CapgoUpdater.java createInfoObject (no key_id)",
	},
	{
		line: "7.30-7.36.1 (7.x main line)", plugin: "7.36.1", keyID: capgoKeyIDNone, fields: capgoInfoFields, noUpdate: capgoReadsError, encChecksum: "hex",
		encSameKey: "update", encOtherKey: "update", encNoKey: "update", plainNoKey: "update", plainWithKey: "update",
		source: "Cap-go/capacitor-updater 7.36.1: android/.../CapgoUpdater.java createInfoObject (no key_id); CapacitorUpdaterPlugin.java jsRes.has(\"error\")",
	},
	{
		line: "7.41-7.45 backports", plugin: "7.45.10", keyID: capgoKeyIDFull, fields: capgoInfoFields, noUpdate: capgoReadsErrorOrKind, encChecksum: "hex",
		encSameKey: "update", encOtherKey: "blocked", encNoKey: "blocked", plainNoKey: "update", plainWithKey: "blocked",
		source: "npm @capgo/capacitor-updater@7.41.1 and @7.45.10: android/.../CryptoCipher.java calcKeyId substring(0, 20), " +
			"CapgoUpdater.java createInfoObject; CapacitorUpdaterPlugin.java reads kind in 7.45.10, error only in 7.41.1",
	},
	{
		line: "7.50+ (7.50, 7.51)", plugin: "7.50.1", keyID: capgoKeyIDFull, fields: capgoInfoFields851, noUpdate: capgoReadsErrorOrKind, encChecksum: "hex",
		encSameKey: "update", encOtherKey: "blocked", encNoKey: "blocked", plainNoKey: "update", plainWithKey: "blocked",
		source: "Cap-go/capacitor-updater 7.50.2 (sends plugin_version 7.50.1): android/.../CryptoCipher.java substring(0, 20), CapgoUpdater.java createInfoObject, " +
			"CapacitorUpdaterPlugin.java jsRes.has(\"error\") || jsRes.has(\"kind\")",
	},
	{
		line: "8.2.0-8.40.7", plugin: "8.40.7", keyID: capgoKeyIDPrefix, fields: capgoInfoFields, noUpdate: capgoReadsError, encChecksum: "hex",
		// "MIIB" is every RSA-2048 key: another key of that size is not told apart
		// (the device then fails to decrypt); no key_id is no key.
		encSameKey: "update", encOtherKey: "update", encNoKey: "blocked", plainNoKey: "update", plainWithKey: "blocked",
		source: "Cap-go/capacitor-updater 8.2.0 and 8.40.7: android/.../CryptoCipher.java calcKeyId substring(0, 4), " +
			"ios/Sources/CapacitorUpdaterPlugin/CryptoCipher.swift prefix(4); CapgoUpdater.java key_id only when a publicKey is set",
	},
	{
		line: "8.40.8+", plugin: "8.40.8", keyID: capgoKeyIDFull, fields: capgoInfoFields, noUpdate: capgoReadsError, encChecksum: "hex",
		encSameKey: "update", encOtherKey: "blocked", encNoKey: "blocked", plainNoKey: "update", plainWithKey: "blocked",
		source: "Cap-go/capacitor-updater 8.40.8: android/.../CryptoCipher.java substring(0, 20) (commit 6217a0f5); CapacitorUpdaterPlugin.java jsRes.has(\"error\")",
	},
	{
		line: "8.51.x", plugin: "8.51.14", keyID: capgoKeyIDFull, fields: capgoInfoFields851, noUpdate: capgoReadsErrorOrKind, encChecksum: "hex",
		encSameKey: "update", encOtherKey: "blocked", encNoKey: "blocked", plainNoKey: "update", plainWithKey: "blocked",
		source: "Cap-go/capacitor-updater 8.51.14: android/.../CapgoUpdater.java createInfoObject (install_source, key_id), " +
			"CapacitorUpdaterPlugin.java jsRes.has(\"error\") || jsRes.has(\"kind\"); also getLatest includeBundleSize -> " +
			"CapgoUpdater.java getBundleDownloadSize (TestCapgoMatrixManifestSize) and crash stats (TestCapgoCrashCountsAgainstRunningVersion)",
	},
}

// capgoLineBody is the check body a line sends for device, from an app whose
// publicKey is pub ("" = none).
func capgoLineBody(l capgoLine, app, device, pub string) map[string]any {
	values := map[string]any{
		"platform": "android", "device_id": device, "app_id": app, "custom_id": "",
		"version_build": "1.0.0", "version_code": "10", "version_os": "14", "version_name": "0.9.0",
		"plugin_version": l.plugin, "is_emulator": false, "is_prod": true, "install_source": "com.android.vending",
		"defaultChannel": "",
	}
	body := map[string]any{}
	for _, f := range l.fields {
		body[f] = values[f]
	}
	if id := capgoDeviceKeyID(pub); pub != "" {
		switch l.keyID {
		case capgoKeyIDPrefix:
			body["key_id"] = id[:4]
		case capgoKeyIDFull:
			body["key_id"] = id
		}
	}
	return body
}

// capgoPublishEncryptedFor publishes zip encrypted for key as app's stable release.
func (e *testEnv) capgoPublishEncryptedFor(app, version string, key *rsa.PrivateKey, zip []byte) release.Signatures {
	e.t.Helper()
	enc, sessionKey, checksum, err := sign.CapgoEncrypt(key, zip)
	if err != nil {
		e.t.Fatal(err)
	}
	sigs := release.Signatures{SessionKey: sessionKey, EncChecksum: checksum, KeyID: sign.CapgoKeyID(capgoPublicPEM(&key.PublicKey))}
	ctx := context.Background()
	_, up, err := e.pipe.Create(ctx, publish.Input{AppID: app, Version: version, SHA256: sha256hex(enc), Size: int64(len(enc)), Signatures: sigs})
	if err != nil {
		e.t.Fatal(err)
	}
	e.upload(up, enc)
	e.setStable(app, "production", version)
	return sigs
}

func TestCapgoVersionMatrix(t *testing.T) {
	e := newTestEnv(t)
	const encApp, plainApp = "com.example.enc", "com.example.plain"
	e.createApp(encApp)
	e.createApp(plainApp)
	key, other := capgoKeys(t)
	pub, otherPub := capgoPublicPEM(&key.PublicKey), capgoPublicPEM(&other.PublicKey)
	zip := testenv.Zip(t, map[string]string{"index.html": "<html>1.0.1</html>", "js/app.js": "CapacitorUpdater.notifyAppReady()"})
	sigs := e.capgoPublishEncryptedFor(encApp, "1.0.1", key, zip)
	e.publishZip(plainApp, publish.Input{Version: "1.0.1"}, zip, "production")

	for i, l := range capgoMatrix {
		t.Run(l.line, func(t *testing.T) {
			device := "0e7a2f3c-5b1d-4c8e-9a6f-3d2b1c0e9f" + string(rune('a'+i)) + "0"
			for _, sc := range []struct {
				name, app, pub, want string
			}{
				{"encrypted, same key", encApp, pub, l.encSameKey},
				{"encrypted, other key", encApp, otherPub, l.encOtherKey},
				{"encrypted, no key", encApp, "", l.encNoKey},
				{"plain, no key", plainApp, "", l.plainNoKey},
				{"plain, key", plainApp, pub, l.plainWithKey},
			} {
				body := capgoLineBody(l, sc.app, device, sc.pub)
				st, h, m := e.capgoCheck(body)
				if got := !l.noUpdate(m); got != (sc.want == "update") {
					t.Fatalf("%s: the %s line reads %v as update=%v, want %s (%s)", sc.name, l.line, m, got, sc.want, l.source)
				}
				if sc.want == "blocked" {
					capgoWantNoUpdate(t, st, h, m, "blocked", release.ReasonKeyMismatch)
					continue
				}
				capgoWantUpdate(t, st, m)
				if sc.app == plainApp {
					continue
				}
				// Encrypted answers carry the CLI's session key as made and its
				// checksum in the form the line reads; the device with the right key
				// decrypts the bytes and verifies them against that checksum.
				raw, _ := hex.DecodeString(sigs.EncChecksum)
				want := sigs.EncChecksum
				if l.encChecksum == "base64" {
					want = base64.StdEncoding.EncodeToString(raw)
				}
				if m["session_key"] != sigs.SessionKey || m["checksum"] != want {
					t.Fatalf("%s: encrypted answer %v, want session_key %s and a %s checksum", sc.name, m, sigs.SessionKey, l.encChecksum)
				}
				if sc.pub == pub {
					_, _, enc := e.get(m["url"].(string))
					sum := sha256.Sum256(capgoDeviceDecrypt(t, &key.PublicKey, sigs.SessionKey, enc))
					if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.Hash(0), sum[:], raw); err != nil {
						t.Fatalf("%s: %v", sc.name, err)
					}
				}
			}
		})
	}
}

// 8.51.x: getLatest({includeBundleSize: true}) posts the files it lacks to
// <updateUrl>/manifest_size and hands the answer to the app as downloadSize
// (CapgoUpdater.java getBundleDownloadSize / CapgoUpdater.swift, 8.51.14: any
// non-2xx or unparsable answer becomes every file unknown).
func TestCapgoMatrixManifestSize(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	files := map[string]string{"index.html": "<html>1.0.1</html>", "js/app.js": strings.Repeat("a", 3000), "assets/logo.svg": "<svg/>"}
	e.publishZip(capgoApp, publish.Input{Version: "1.0.1"}, testenv.Zip(t, files), "production")

	l := capgoMatrix[len(capgoMatrix)-1]
	body := capgoLineBody(l, capgoApp, "0e7a2f3c-5b1d-4c8e-9a6f-3d2b1c0e9f8a", "")
	st, _, m := e.capgoCheck(body)
	manifest, _ := capgoWantUpdate(t, st, m)["manifest"].([]any)
	if len(manifest) != len(files) {
		t.Fatalf("manifest %v", m["manifest"])
	}
	// The device already has index.html: it asks about the two others.
	var missing []any
	for _, it := range manifest {
		if it.(map[string]any)["file_name"] != "index.html" {
			missing = append(missing, it)
		}
	}
	req := capgoLineBody(l, capgoApp, "0e7a2f3c-5b1d-4c8e-9a6f-3d2b1c0e9f8a", "")
	req["version"], req["manifest"] = "1.0.1", missing
	st, _, b := e.do("POST", "/capgo/updates/manifest_size", req)
	a := jsonMap(t, b)
	if st != http.StatusOK {
		t.Fatalf("manifest_size: %d %v", st, a)
	}
	if a["totalSize"] != json.Number("3006") || a["knownFiles"] != json.Number("2") || a["unknownFiles"] != json.Number("0") {
		t.Fatalf("manifest_size = %v", a)
	}
	got := a["files"].([]any)
	var names []string
	for i, f := range got {
		o := f.(map[string]any)
		want := missing[i].(map[string]any)
		if o["file_name"] != want["file_name"] || o["file_hash"] != want["file_hash"] || o["download_url"] != want["download_url"] {
			t.Fatalf("file %d not echoed: %v, sent %v", i, o, want)
		}
		if _, ok := o["error"]; ok {
			t.Fatalf("known file with an error: %v", o)
		}
		names = append(names, o["file_name"].(string)+"="+string(o["size"].(json.Number)))
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "assets/logo.svg=6 js/app.js=3000" {
		t.Fatalf("sizes %v", names)
	}
}
