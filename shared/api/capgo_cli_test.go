package api

// Capgo checklist item 18: bundles made by the real @capgo/cli (pinned in
// infra/capgo-cli) go through our pipeline unchanged, our checksum equals the CLI's,
// and its encrypted bundles pass the device-side checks with the CLI's public key.
//
// The CLI is found through OTA_CAPGO_CLI_DIR: the folder whose node_modules/.bin/capgo
// is the pinned CLI (`make` runs `npm ci --ignore-scripts` in infra/capgo-cli and sets
// it; a relative path is taken from the repository root). Without it the tests skip
// locally and fail in CI. Every command here runs
// offline (CI=true, DO_NOT_TRACK=1, no stdin).

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
)

const capgoUpdaterVersion = "8.51.23" // its version makes the CLI pick SHA-256 hex and V3 checksums

// capgoCLI is a fake Capacitor app wired to the pinned CLI.
type capgoCLI struct {
	t   *testing.T
	bin string // node_modules/.bin/capgo
	app string // the app folder (cwd of every command)
}

func newCapgoCLI(t *testing.T) *capgoCLI {
	t.Helper()
	dir := os.Getenv("OTA_CAPGO_CLI_DIR")
	if dir == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("OTA_CAPGO_CLI_DIR is not set: CI must install the pinned Capgo CLI (npm ci --ignore-scripts in infra/capgo-cli) and point OTA_CAPGO_CLI_DIR at that folder")
		}
		t.Skip("OTA_CAPGO_CLI_DIR not set (npm ci --ignore-scripts in infra/capgo-cli, then OTA_CAPGO_CLI_DIR=<that folder>)")
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", "..", dir) // relative to the repository root
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "node_modules", ".bin", "capgo")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("OTA_CAPGO_CLI_DIR=%s has no node_modules/.bin/capgo (run npm ci --ignore-scripts there): %v", dir, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not on PATH: %v", err)
	}
	updater := filepath.Join(dir, "node_modules", "@capgo", "capacitor-updater")
	var pkg struct{ Version string }
	if b, err := os.ReadFile(filepath.Join(updater, "package.json")); err != nil || json.Unmarshal(b, &pkg) != nil || pkg.Version != capgoUpdaterVersion {
		t.Fatalf("%s must hold @capgo/capacitor-updater %s (found %q, %v)", updater, capgoUpdaterVersion, pkg.Version, err)
	}

	app := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(app, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("capacitor.config.json", `{"appId":"`+capgoApp+`","appName":"Demo","webDir":"dist"}`)
	write("package.json", `{"name":"demo","version":"1.0.0","private":true,"dependencies":{"@capgo/capacitor-updater":"`+capgoUpdaterVersion+`"}}`)
	write("dist/index.html", `<!doctype html><html><head><script type="module" src="assets/app.js"></script></head><body>demo</body></html>`)
	// The CLI looks for notifyAppReady in the build's .js files.
	write("dist/assets/app.js", `import { CapacitorUpdater } from "@capgo/capacitor-updater"; CapacitorUpdater.notifyAppReady();`)
	write("dist/assets/style.css", strings.Repeat("body{margin:0}\n", 40))
	if err := os.MkdirAll(filepath.Join(app, "node_modules", "@capgo"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(updater, filepath.Join(app, "node_modules", "@capgo", "capacitor-updater")); err != nil {
		t.Fatal(err)
	}
	return &capgoCLI{t: t, bin: bin, app: app}
}

// run runs the CLI in the app folder and returns stdout.
func (c *capgoCLI) run(args ...string) []byte {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Dir = c.app
	cmd.Env = append(os.Environ(), "CI=true", "DO_NOT_TRACK=1", "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("capgo %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// runJSON runs a --json command and decodes its JSON object.
func (c *capgoCLI) runJSON(v any, args ...string) {
	c.t.Helper()
	out := c.run(args...)
	i := bytes.IndexByte(out, '{')
	if i < 0 {
		c.t.Fatalf("capgo %s printed no JSON: %s", strings.Join(args, " "), out)
	}
	if err := json.NewDecoder(bytes.NewReader(out[i:])).Decode(v); err != nil {
		c.t.Fatalf("capgo %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (c *capgoCLI) read(name string) []byte {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.app, name))
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

type capgoZipOut struct {
	Bundle, Filename, Checksum string
}

// zip runs `capgo bundle zip` and returns its output and the zip bytes.
func (c *capgoCLI) zip(version string) (capgoZipOut, []byte) {
	c.t.Helper()
	var out capgoZipOut
	c.runJSON(&out, "bundle", "zip", capgoApp, "--path", "./dist", "--bundle", version, "--json")
	if out.Bundle != version || out.Filename == "" {
		c.t.Fatalf("bundle zip output %+v", out)
	}
	return out, c.read(out.Filename)
}

func TestCapgoCLI_ZipChecksumEqualsOurs(t *testing.T) {
	cli := newCapgoCLI(t)
	out, zip := cli.zip("1.0.1")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(out.Checksum) || sha256hex(zip) != out.Checksum {
		t.Fatalf("CLI checksum %q, sha256 of its zip %s", out.Checksum, sha256hex(zip))
	}

	e := newTestEnv(t)
	e.createApp(capgoApp)
	rel := e.publishZip(capgoApp, publish.Input{Version: out.Bundle}, zip, "production")
	if rel.SHA256 != out.Checksum {
		t.Fatalf("our sha256 %s, the CLI's %s", rel.SHA256, out.Checksum)
	}

	st, _, m := e.capgoCheck(capgoDevice(t, "", "1.0.0", nil))
	capgoWantUpdate(t, st, m)
	if m["version"] != "1.0.1" || m["checksum"] != out.Checksum {
		t.Fatalf("answer %v, want 1.0.1 with the CLI's checksum %s", m, out.Checksum)
	}
	st, _, b := e.get(m["url"].(string))
	if st != 200 || !bytes.Equal(b, zip) {
		t.Fatalf("download %d: not the CLI's zip", st)
	}
	var names []string
	for _, it := range m["manifest"].([]any) {
		f := it.(map[string]any)
		names = append(names, f["file_name"].(string))
		_, _, fb := e.get(f["download_url"].(string))
		want := cli.read(filepath.Join("dist", filepath.FromSlash(f["file_name"].(string))))
		if !bytes.Equal(fb, want) || sha256hex(fb) != f["file_hash"] {
			t.Fatalf("%s: served file differs from the CLI's input", f["file_name"])
		}
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "assets/app.js,assets/style.css,index.html" {
		t.Fatalf("manifest %v", names)
	}
}

func TestCapgoCLI_EncryptedBundle(t *testing.T) {
	cli := newCapgoCLI(t)
	cli.run("key", "create", "--force")
	var cfg struct {
		Plugins struct {
			CapacitorUpdater struct {
				PublicKey string `json:"publicKey"`
			}
		}
	}
	if err := json.Unmarshal(cli.read("capacitor.config.json"), &cfg); err != nil {
		t.Fatal(err)
	}
	publicPEM := cfg.Plugins.CapacitorUpdater.PublicKey // what the app ships
	blk, _ := pem.Decode([]byte(publicPEM))
	if blk == nil || blk.Type != "RSA PUBLIC KEY" {
		t.Fatalf("config publicKey is not a PKCS#1 RSA PUBLIC KEY: %q", publicPEM)
	}
	pub, err := x509.ParsePKCS1PublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	keyID := sign.CapgoKeyID(publicPEM)
	if keyID != capgoDeviceKeyID(publicPEM) || keyID != sign.CapgoKeyID(string(cli.read(".capgo_key_v2.pub"))) {
		t.Fatalf("key id %q differs from the device's %q or the .pub file's", keyID, capgoDeviceKeyID(publicPEM))
	}

	zipOut, zip := cli.zip("1.0.2")
	var encOut struct {
		Checksum, Filename, IVSessionKey string
	}
	cli.runJSON(&encOut, "bundle", "encrypt", zipOut.Filename, zipOut.Checksum, "--json")
	if !regexp.MustCompile(`^[0-9a-f]{512}$`).MatchString(encOut.Checksum) || encOut.IVSessionKey == "" {
		t.Fatalf("bundle encrypt output %+v", encOut)
	}
	enc := cli.read(encOut.Filename)

	e := newTestEnv(t)
	e.createApp(capgoApp)
	e.capgoPublishEncrypted("1.0.2", enc, release.Signatures{SessionKey: encOut.IVSessionKey, EncChecksum: encOut.Checksum, KeyID: keyID}, "production")

	st, _, m := e.capgoCheck(capgoDevice(t, "", "1.0.0", map[string]any{"key_id": capgoDeviceKeyID(publicPEM)}))
	capgoWantUpdate(t, st, m)
	if m["session_key"] != encOut.IVSessionKey || m["checksum"] != encOut.Checksum {
		t.Fatalf("answer %v does not carry the CLI's session key and checksum verbatim", m)
	}
	st, _, served := e.get(m["url"].(string))
	if st != 200 || !bytes.Equal(served, enc) {
		t.Fatalf("download %d: not the CLI's encrypted bytes", st)
	}
	// The device: decrypt with the app's public key, check the encrypted checksum.
	plain := capgoDeviceDecrypt(t, pub, m["session_key"].(string), served)
	if !bytes.Equal(plain, zip) {
		t.Fatal("decrypted bundle differs from the CLI's zip")
	}
	if err := capgoDeviceVerify(pub, plain, m["checksum"].(string)); err != nil {
		t.Fatalf("device checksum check with the CLI's key: %v", err)
	}
	sum := sha256.Sum256(plain)
	if err := sign.CapgoVerifyChecksum(pub, sum[:], m["checksum"].(string)); err != nil {
		t.Fatalf("sign.CapgoVerifyChecksum: %v", err)
	}
	if p2, err := sign.CapgoDecrypt(pub, m["session_key"].(string), served); err != nil || !bytes.Equal(p2, zip) {
		t.Fatalf("sign.CapgoDecrypt: %v", err)
	}

	// And the CLI itself decrypts what we served.
	if err := os.WriteFile(filepath.Join(cli.app, "served.zip"), served, 0o644); err != nil {
		t.Fatal(err)
	}
	cli.run("bundle", "decrypt", "served.zip", m["session_key"].(string), "--checksum", m["checksum"].(string))
	if !bytes.Equal(cli.read("served.zip_decrypted.zip"), zip) {
		t.Fatal("capgo bundle decrypt of the served bytes is not the original zip")
	}

	// Another key's device is refused.
	var other *rsa.PrivateKey
	_, other = capgoKeys(t)
	st, h, m := e.capgoCheck(capgoDevice(t, "", "1.0.0", map[string]any{"key_id": capgoDeviceKeyID(capgoPublicPEM(&other.PublicKey))}))
	capgoWantNoUpdate(t, st, h, m, "blocked", "key_id_mismatch")
}
