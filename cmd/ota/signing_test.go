package main

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
)

func TestSigningKeyP256(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	out, _, err := runCLI(t, "--json", "signing-key", "create", "--out", dir, "--type", "ecdsa-p256")
	if err != nil {
		t.Fatal(err)
	}
	var kr signingKeyResult
	if err := json.Unmarshal([]byte(out), &kr); err != nil || kr.Type != keyTypeP256 {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if kr.PrivateKey != filepath.Join(dir, statementPrivateFile) || kr.PublicKey != filepath.Join(dir, statementPublicFile) {
		t.Fatalf("files: %+v", kr)
	}
	st, err := os.Stat(kr.PrivateKey)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode: %v %v", st, err)
	}
	privPEM, _ := os.ReadFile(kr.PrivateKey)
	if blk, _ := pem.Decode(privPEM); blk == nil || blk.Type != "PRIVATE KEY" {
		t.Fatal("private key is not PKCS#8 PEM")
	}
	priv, err := sign.ParseP256PrivatePEM(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	// The one-line key the app builds in and the PEM file name the same key.
	pub, err := sign.ParseP256PublicKey([]byte(kr.PublicSPKI))
	if err != nil || !pub.Equal(&priv.PublicKey) || strings.ContainsAny(kr.PublicSPKI, "\n -") {
		t.Fatalf("public_spki_base64 %q: %v", kr.PublicSPKI, err)
	}
	pubPEM, _ := os.ReadFile(kr.PublicKey)
	if filePub, err := sign.ParseP256PublicKey(pubPEM); err != nil || !filePub.Equal(pub) {
		t.Fatalf("public key file: %v", err)
	}

	human, _, err := runCLI(t, "signing-key", "create", "--out", dir, "--type", "ecdsa-p256", "--force")
	if err != nil || !strings.Contains(human, "--seed-statement-key") || !strings.Contains(human, "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE") {
		t.Fatalf("human output: %v\n%s", err, human)
	}
	if _, _, err := runCLI(t, "signing-key", "create", "--out", dir, "--type", "ed25519"); err == nil || !strings.Contains(err.Error(), "ecdsa-p256") {
		t.Fatalf("bad type: %v", err)
	}
	// RSA stays the default and keeps its own file names.
	if _, _, err := runCLI(t, "signing-key", "create", "--out", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, signingPrivateFile)); err != nil {
		t.Fatal(err)
	}
}

func TestPublishSeedStatement(t *testing.T) {
	f := newFakeServer(t, release.StatusReady)
	dir := t.TempDir()
	if _, _, err := runCLI(t, "signing-key", "create", "--out", dir, "--type", "ecdsa-p256"); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, statementPrivateFile)
	www := filepath.Join("..", "..", "testdata", "quickstart", "www")
	_, stderr, err := runCLI(t, "--server", f.srv.URL, "--key", testKey, "--json", "release", www, "--app", "com.example.app",
		"--version", "2.1.0", "--min-native", "1.5.0", "--seed-statement-key", keyFile)
	if err != nil {
		t.Fatalf("publish: %v\n%s", err, stderr)
	}
	if stderr != "" {
		t.Errorf("a version the seed app orders gave a warning: %q", stderr)
	}
	in := f.input
	want := `{"v":1,"version":"2.1.0","sha256":"` + sign.SHA256Hex(f.uploaded) + `","minNativeVersion":"1.5.0"}`
	if in.Signatures.Statement != want {
		t.Fatalf("statement %s, want %s", in.Signatures.Statement, want)
	}
	pubPEM, _ := os.ReadFile(filepath.Join(dir, statementPublicFile))
	pub, err := sign.ParseP256PublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := sign.VerifyP256(pub, []byte(in.Signatures.Statement), in.Signatures.StatementSig); err != nil {
		t.Fatalf("statement signature: %v", err)
	}
	if in.Signatures.PSS != "" || in.Signatures.PKCS1 != "" {
		t.Fatal("RSA signatures without --sign-key")
	}

	for _, tc := range []argCase{
		{"with a chunk", []string{"release", www, "--app", "a", "--version", "1.0.0", "--format", "chunk", "--seed-statement-key", keyFile}, "--seed-statement-key are for zip bundles"},
		{"with capgo encryption", []string{"release", www, "--app", "a", "--version", "1.0.0", "--capgo-key", keyFile, "--seed-statement-key", keyFile}, "only Capgo devices"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := runCLI(t, append([]string{"--server", f.srv.URL, "--key", testKey}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	rsaDir := t.TempDir()
	if _, _, err := runCLI(t, "signing-key", "create", "--out", rsaDir); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, "--server", f.srv.URL, "--key", testKey, "release", www, "--app", "a", "--version", "1.0.0",
		"--seed-statement-key", filepath.Join(rsaDir, signingPrivateFile))
	if err == nil || !strings.Contains(err.Error(), "not an ECDSA key") {
		t.Fatalf("an RSA key as statement key: %v", err)
	}
}

func TestPublishSeedVersionWarning(t *testing.T) {
	f := newFakeServer(t, release.StatusReady)
	www := filepath.Join("..", "..", "testdata", "quickstart", "www")
	out, stderr, err := runCLI(t, "--server", f.srv.URL, "--key", testKey, "--json", "release", www, "--app", "a", "--version", "1.2")
	if err != nil {
		t.Fatalf("a warning must not fail the publish: %v", err)
	}
	if !strings.Contains(stderr, "warning: version 1.2 is not MAJOR.MINOR.PATCH[-suffix]: the seed app reads it as 1.2.0") {
		t.Fatalf("stderr: %q", stderr)
	}
	if !json.Valid([]byte(out)) {
		t.Fatalf("--json stdout is not JSON: %q", out)
	}
}

func TestSeedVersionWarnings(t *testing.T) {
	tests := []struct {
		version, minNative string
		want               []string // substrings, one per warning
	}{
		{"1.2.3", "", nil},
		{"1.2.3-rc.1", "2.0", nil},
		{"10.0.0-beta+exp.sha.5114f85", "1.5.0", nil},
		{"1.2", "", []string{"reads it as 1.2.0"}},
		{"1.2.3.4", "", []string{"reads it as 1.2.3 "}},
		{"1.2.3+build", "", []string{"reads it as 1.2.3 "}},
		{"01.2.3", "", []string{"reads it as 1.2.3 "}},
		{"1.2.3-", "", []string{"reads it as 1.2.3 "}},
		{"1.2.99999999999999999", "", []string{"beyond 2^53"}},
		{"1.0.0", "v2.0.0", []string{"--min-native v2.0.0", "reads it as 0.0.0"}},
		{"1.0.0", "2.0.0.1", []string{"reads it as 2.0.0"}},
		{"1.2", "2.0.0+x", []string{"version 1.2", "--min-native 2.0.0+x"}},
	}
	for _, tc := range tests {
		got := strings.Join(seedVersionWarnings(tc.version, tc.minNative), "\n")
		if len(tc.want) == 0 && got != "" {
			t.Errorf("%s / %s: unexpected %q", tc.version, tc.minNative, got)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s / %s: %q lacks %q", tc.version, tc.minNative, got, w)
			}
		}
	}
}

func TestAppNativeUpdateSignature(t *testing.T) {
	var body map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "PATCH" || r.URL.Path != "/v1/apps/com.example.app" {
			w.WriteHeader(404)
			return
		}
		b, _ := io.ReadAll(r.Body)
		body = nil
		json.Unmarshal(b, &body)
		a := release.App{ID: "com.example.app", DefaultChannel: "production"}
		if v, ok := body["native_update_signature"].(string); ok {
			a.NativeUpdateSignature = v
		}
		json.NewEncoder(w).Encode(a)
	}))
	t.Cleanup(srv.Close)
	cli := func(args ...string) (string, error) {
		out, _, err := runCLI(t, append([]string{"--server", srv.URL, "--key", testKey, "app", "update", "com.example.app"}, args...)...)
		return out, err
	}
	out, err := cli("--native-update-signature", "pkcs1")
	if err != nil || body["native_update_signature"] != "pkcs1" || !strings.Contains(out, "pkcs1") {
		t.Fatalf("pkcs1: %v %v\n%s", err, body, out)
	}
	// "" is sent (it resets the setting); a flag not given is not.
	if _, err := cli("--native-update-signature", ""); err != nil || body["native_update_signature"] != "" {
		t.Fatalf("reset: %v %v", err, body)
	}
	if _, err := cli("--name", "x"); err != nil || body["native_update_signature"] != nil {
		t.Fatalf("unchanged: %v %v", err, body)
	}
	body = nil
	if _, err := cli("--native-update-signature", "rsa"); err == nil || !strings.Contains(err.Error(), "--native-update-signature") || body != nil {
		t.Fatalf("bad value: %v (sent %v)", err, body)
	}
}
