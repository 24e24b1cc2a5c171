package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otakit/ota/shared/sign"
)

// A Flux chunk too large for an inline upload on AWS is published with
// `ota release FILE --format chunk`: the presigned upload carries its bytes as they
// are, Flux's latest and chunk routes serve them, and the HMAC the CLI made verifies.
func TestE2EPublishFluxChunk(t *testing.T) {
	ota, otad := buildBinaries(t)
	srv := startOtad(t, otad, []string{"OTA_ADMIN_KEY=" + e2eAdminKey})
	env := []string{"OTA_SERVER=" + srv.base, "OTA_API_KEY=" + e2eAdminKey}
	run := func(args ...string) otaResult { return runOta(t, ota, "", env, args...) }
	const app, secret = "com.example.notes", "flux-secret-0123456789"
	if r := run("app", "create", app, "--flux-secret", secret); r.code != 0 {
		t.Fatal(r)
	}
	chunk := append([]byte("FLUX\x01"), bytes.Repeat([]byte{0, 1, 2, 255}, 512<<10)...) // 2 MiB: over the inline limit on AWS
	file := filepath.Join(t.TempDir(), "app.flux")
	if err := os.WriteFile(file, chunk, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run("release", file, "--app", app, "--version", "2.0.0"); r.code == 0 || !strings.Contains(r.stderr, "not a zip") {
		t.Fatalf("without --format chunk a non-zip must be refused: %s", r)
	}
	if r := run("release", file, "--format", "chunk", "--capgo-key", file, "--app", app, "--version", "2.0.0"); r.code == 0 {
		t.Fatalf("--format chunk with --capgo-key must be refused: %s", r)
	}
	r := run("release", file, "--format", "chunk", "--app", app, "--version", "2.0.0", "--flux-secret", secret, "--channel", "production")
	if r.code != 0 || !strings.Contains(r.stderr, "chunk "+file) {
		t.Fatalf("publish chunk: %s", r)
	}
	code, body := httpGet(t, srv.base+"/flux/releases/"+app+"/latest")
	var info struct {
		Version   string `json:"version"`
		ChunkSize int64  `json:"chunkSize"`
		Signature string `json:"signature"`
	}
	if code != 200 || json.Unmarshal(body, &info) != nil || info.Version != "2.0.0" || info.ChunkSize != int64(len(chunk)) ||
		info.Signature != sign.FluxHMAC(secret, chunk) {
		t.Fatalf("latest: %d %s", code, body)
	}
	if code, got := httpGet(t, srv.base+"/flux/chunks/"+app+"/2.0.0"); code != 200 || !bytes.Equal(got, chunk) {
		t.Fatalf("chunk download: %d, %d bytes", code, len(got))
	}
	// Zip clients never see it.
	if code, _ := httpGet(t, srv.base+"/native-update/"+app+"/check?channel=production"); code != 404 {
		t.Fatalf("native-update was offered a chunk: %d", code)
	}
}
