package api

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
)

// Version matrix of the native-update clients: for each client line, the exact
// request it sends, what the server answers, and the rule by which that line reads
// the answer and verifies `signature`. Every rule cites the client file it comes
// from (repository aoneahsan/native-update). Two lines:
//   - native-update 1.3.1 (nuRef1x): the plugin's download() reads `signature` and,
//     when liveUpdate.security.enableSignatureValidation is true and a publicKey is
//     set, verifies RSA-PSS SHA-256 (MGF1-SHA-256, salt = digest length, 32).
//   - capacitor-native-update 2.0.1 (nuRef20): SecurityManager verifies RSASSA-
//     PKCS1-v1_5 SHA-256 over the zip bytes with a bare base64 DER key. At this ref
//     (and in the published 2.0.0) download() reads url, version and checksum only and
//     never calls it; the rows check what that verifier would accept.

const (
	nuRepo  = "aoneahsan/native-update"
	nuRef1x = "9972682b678e0fe9d1b5920592cf80bf54a3c057" // package.json: native-update 1.3.1
	nuRef20 = "24128cf34ecf3340672f766a10ccf4572c420197" // package.json: capacitor-native-update 2.0.1
)

// clientSource is one client file a matrix row's rule was read from.
type clientSource struct{ repo, ref, path, what string }

func (c clientSource) String() string {
	return c.repo + "@" + c.ref[:8] + ":" + c.path + " (" + c.what + ")"
}

var (
	nuAndroid1xPlugin = clientSource{nuRepo, nuRef1x, "android/src/main/java/com/aoneahsan/nativeupdate/LiveUpdatePlugin.kt",
		"checkForUpdates: GET {serverUrl}/check?channel=C, any 2xx JSON object is an update; download reads signature, checks checksum by exact string"}
	nuAndroid1xSecurity = clientSource{nuRepo, nuRef1x, "android/src/main/java/com/aoneahsan/nativeupdate/SecurityManager.kt",
		"verifySignature: SHA256withRSA/PSS, X509EncodedKeySpec of a PEM (headers stripped) or bare base64 key"}
	nuIOS1xPlugin = clientSource{nuRepo, nuRef1x, "ios/Plugin/LiveUpdate/LiveUpdatePlugin.swift",
		"checkForUpdates: update only if JSON available == true; download verifies signature when enableSignatureValidation"}
	nuIOS1xSecurity = clientSource{nuRepo, nuRef1x, "ios/Plugin/Security/SecurityManager.swift",
		"verifySignature: rsaSignatureMessagePSSSHA256, PEM headers stripped or bare base64"}
	nuAndroid20Plugin = clientSource{nuRepo, nuRef20, "android/src/main/java/com/capacitor/nativeupdate/LiveUpdatePlugin.kt",
		"checkForUpdates: same request and 2xx rule; download reads url, version, checksum only"}
	nuAndroid20Security = clientSource{nuRepo, nuRef20, "android/src/main/java/com/capacitor/nativeupdate/SecurityManager.kt",
		"verifySignature: SHA256withRSA (PKCS#1 v1.5), Base64.decode of the whole key string, X509EncodedKeySpec"}
	nuIOS20Plugin = clientSource{nuRepo, nuRef20, "ios/Plugin/LiveUpdate/LiveUpdatePlugin.swift",
		"checkForUpdates: available == true; download reads url, version, checksum only"}
	nuIOS20Security = clientSource{nuRepo, nuRef20, "ios/Plugin/Security/SecurityManager.swift",
		"verifySignature: rsaSignatureMessagePKCS1v15SHA256, Data(base64Encoded:) of the whole key string"}
)

// User-Agents the two native HTTP stacks send (the only thing a device sends besides the URL).
const (
	nuUAAndroid = okhttpUA
	nuUAiOS     = "MyApp/1 CFNetwork/1498.700.2 Darwin/23.6.0"
)

// nuReadsAndroid: any 2xx whose body is a JSON object is "update available".
func nuReadsAndroid(status int, body map[string]any) bool {
	return status >= 200 && status < 300 && body != nil
}

// nuReadsIOS: the HTTP status is ignored; the body must have available == true.
func nuReadsIOS(_ int, body map[string]any) bool {
	v, ok := body["available"].(bool)
	return ok && v
}

// nuKeyForm is how an app of that line holds the public key, and how the line
// parses it back.
type nuKeyForm int

const (
	nuKeySPKIPEM    nuKeyForm = iota // 1.x: "-----BEGIN PUBLIC KEY-----" (headers stripped, then base64 SPKI)
	nuKeyBareBase64                  // 2.0: bare base64 of the DER; a PEM does not decode
)

// nuDeviceKey renders the publisher's key the way the app's config holds it and
// parses it back the way that client line does.
func nuDeviceKey(t *testing.T, form nuKeyForm) *rsa.PublicKey {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&adRSA(t).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var cfg string
	switch form {
	case nuKeySPKIPEM:
		cfg = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		cfg = strings.NewReplacer("-----BEGIN PUBLIC KEY-----", "", "-----END PUBLIC KEY-----", "", "\n", "", "\r", "").Replace(cfg)
	case nuKeyBareBase64:
		cfg = base64.StdEncoding.EncodeToString(der)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cfg))
	if err != nil {
		t.Fatalf("the device cannot decode the configured key: %v", err)
	}
	pub, err := x509.ParsePKIXPublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return pub.(*rsa.PublicKey)
}

// nuVerify is a line's verifier over the zip bytes as downloaded.
type nuVerify func(pub *rsa.PublicKey, zip []byte, sigB64 string) error

func nuVerifyPSS32(pub *rsa.PublicKey, zip []byte, sigB64 string) error {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return err
	}
	d := sha256.Sum256(zip)
	return rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256})
}

func nuVerifyPKCS1(pub *rsa.PublicKey, zip []byte, sigB64 string) error {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return err
	}
	d := sha256.Sum256(zip)
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig)
}

// nuMatrixRow is one client line against one app setting.
type nuMatrixRow struct {
	line    string
	sources []clientSource
	ua      string
	channel string // "production" has a signed release; "empty" has none
	scheme  string // the app's native-update signature setting
	reads   func(status int, body map[string]any) bool

	wantStatus int
	wantUpdate bool
	// Signature rule: the algorithm that line verifies and whether it accepts the
	// answer's `signature` (only for update answers).
	verify     nuVerify
	keyForm    nuKeyForm
	wantAlg    string
	wantAccept bool
}

func nuMatrix() []nuMatrixRow {
	android1x := []clientSource{nuAndroid1xPlugin, nuAndroid1xSecurity}
	ios1x := []clientSource{nuIOS1xPlugin, nuIOS1xSecurity}
	android20 := []clientSource{nuAndroid20Plugin, nuAndroid20Security}
	ios20 := []clientSource{nuIOS20Plugin, nuIOS20Security}
	return []nuMatrixRow{
		// 1.x verifies PSS salt 32: the default answer carries it.
		{line: "native-update 1.3.1 Android, app default", sources: android1x, ua: nuUAAndroid, channel: "production", scheme: "",
			reads: nuReadsAndroid, wantStatus: 200, wantUpdate: true, verify: nuVerifyPSS32, keyForm: nuKeySPKIPEM, wantAlg: nuAlgPSS, wantAccept: true},
		{line: "native-update 1.3.1 iOS, app pss", sources: ios1x, ua: nuUAiOS, channel: "production", scheme: release.SigPSS,
			reads: nuReadsIOS, wantStatus: 200, wantUpdate: true, verify: nuVerifyPSS32, keyForm: nuKeySPKIPEM, wantAlg: nuAlgPSS, wantAccept: true},
		// An app set to pkcs1 with 1.x devices: every signed update would be refused.
		{line: "native-update 1.3.1 Android, app pkcs1 (misconfigured)", sources: android1x, ua: nuUAAndroid, channel: "production", scheme: release.SigPKCS1,
			reads: nuReadsAndroid, wantStatus: 200, wantUpdate: true, verify: nuVerifyPSS32, keyForm: nuKeySPKIPEM, wantAlg: nuAlgPKCS1, wantAccept: false},
		// 2.0's verifier is PKCS#1 v1.5: the app chooses pkcs1.
		{line: "capacitor-native-update 2.0.1 Android, app pkcs1", sources: android20, ua: nuUAAndroid, channel: "production", scheme: release.SigPKCS1,
			reads: nuReadsAndroid, wantStatus: 200, wantUpdate: true, verify: nuVerifyPKCS1, keyForm: nuKeyBareBase64, wantAlg: nuAlgPKCS1, wantAccept: true},
		{line: "capacitor-native-update 2.0.1 iOS, app pkcs1", sources: ios20, ua: nuUAiOS, channel: "production", scheme: release.SigPKCS1,
			reads: nuReadsIOS, wantStatus: 200, wantUpdate: true, verify: nuVerifyPKCS1, keyForm: nuKeyBareBase64, wantAlg: nuAlgPKCS1, wantAccept: true},
		// The problem the setting solves: the default carries PSS, which 2.0's verifier refuses.
		{line: "capacitor-native-update 2.0.1 Android, app default", sources: android20, ua: nuUAAndroid, channel: "production", scheme: "",
			reads: nuReadsAndroid, wantStatus: 200, wantUpdate: true, verify: nuVerifyPKCS1, keyForm: nuKeyBareBase64, wantAlg: nuAlgPSS, wantAccept: false},
		// Nothing to offer: a 404 with available:false reads "up to date" on both stacks.
		{line: "native-update 1.3.1 Android, channel without release", sources: android1x[:1], ua: nuUAAndroid, channel: "empty",
			reads: nuReadsAndroid, wantStatus: 404},
		{line: "native-update 1.3.1 iOS, channel without release", sources: ios1x[:1], ua: nuUAiOS, channel: "empty",
			reads: nuReadsIOS, wantStatus: 404},
		{line: "capacitor-native-update 2.0.1 iOS, channel without release", sources: ios20[:1], ua: nuUAiOS, channel: "empty", scheme: release.SigPKCS1,
			reads: nuReadsIOS, wantStatus: 404},
	}
}

// TestNativeUpdateMatrix runs every row on each metadata backend: the app's
// signature setting is stored on the app record and set through the admin API.
func TestNativeUpdateMatrix(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b tableBackend) {
		e := newTestEnvOn(t, b.open(t))
		// One app per setting, each with a signed release on production and an empty channel.
		apps := map[string]string{"": "com.example.nudefault", release.SigPSS: "com.example.nupss", release.SigPKCS1: "com.example.nupkcs1"}
		zips := map[string][]byte{}
		for scheme, app := range apps {
			e.createApp(app)
			if scheme != "" {
				st, _, body := e.do("PATCH", "/v1/apps/"+app, map[string]string{"native_update_signature": scheme}, "Authorization", "Bearer "+e.admin)
				if st != 200 || jsonMap(t, body)["native_update_signature"] != scheme {
					t.Fatalf("set %s on %s: %d %s", scheme, app, st, body)
				}
			}
			z := adBundleZip(t, "1.0.0")
			e.publishZip(app, publish.Input{Version: "1.0.0", Signatures: adSignatures(t, z)}, z, "production")
			e.adUpdateChannel(app, "empty", func(c *release.Channel) {})
			zips[app] = z
		}
		for _, row := range nuMatrix() {
			t.Run(row.line, func(t *testing.T) {
				app := apps[row.scheme]
				// The exact request: the URL the plugin concatenates and its HTTP stack's User-Agent.
				path := "/native-update/" + app + "/check?channel=" + row.channel
				st, body := e.adGetJSON(path, "User-Agent", row.ua)
				t.Logf("GET %s (User-Agent %s) -> %d; rule from %v", path, row.ua, st, row.sources)
				if st != row.wantStatus {
					t.Fatalf("status %d, want %d: %v", st, row.wantStatus, body)
				}
				if got := row.reads(st, body); got != row.wantUpdate {
					t.Fatalf("the line reads update=%v, want %v: %v", got, row.wantUpdate, body)
				}
				if !row.wantUpdate {
					if body["available"] != false {
						t.Fatalf("no-update body: %v", body)
					}
					return
				}
				nuCheckDownload(t, e, row, body, zips[app])
			})
		}
	})
}

// nuCheckDownload plays the device's download({url, version, checksum, signature})
// with the answer's fields and applies the line's checksum and signature rules.
func nuCheckDownload(t *testing.T, e *testEnv, row nuMatrixRow, body map[string]any, want []byte) {
	t.Helper()
	st, _, zip := e.get(body["url"].(string))
	if st != 200 {
		t.Fatalf("download: %d", st)
	}
	sum := sha256.Sum256(zip)
	if body["checksum"] != hex.EncodeToString(sum[:]) || string(zip) != string(want) {
		t.Fatal("checksum is not the lowercase hex SHA-256 of the downloaded bytes")
	}
	sig, _ := body["signature"].(string)
	if body["signatureAlgorithm"] != row.wantAlg || sig == "" {
		t.Fatalf("signature carries %v (%q), want %s", body["signatureAlgorithm"], sig, row.wantAlg)
	}
	// Both forms stay in their own fields whatever the app chose.
	pub := nuDeviceKey(t, row.keyForm)
	if err := nuVerifyPSS32(pub, zip, fmt.Sprint(body["signaturePss"])); err != nil {
		t.Errorf("signaturePss: %v", err)
	}
	if err := nuVerifyPKCS1(pub, zip, fmt.Sprint(body["signaturePkcs1"])); err != nil {
		t.Errorf("signaturePkcs1: %v", err)
	}
	err := row.verify(pub, zip, sig)
	if accepted := err == nil; accepted != row.wantAccept {
		t.Fatalf("the line's verifier accepts=%v (%v), want %v", accepted, err, row.wantAccept)
	}
}
