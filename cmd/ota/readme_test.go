package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeAddr and readmeKey are what a reader replaces in the README's quickstart:
// the server address and the admin key otad printed.
const (
	readmeAddr = "http://127.0.0.1:8080"
	readmeKey  = "<the key otad printed>"
)

// TestREADMEQuickstart runs the shell blocks of the README's Quickstart as written,
// against a fresh otad, with only the address and key replaced. `go run ./cmd/ota`
// runs the binary built once, through a `go` first on PATH; any other go command
// goes to the real one.
func TestREADMEQuickstart(t *testing.T) {
	ota, otad := buildBinaries(t)
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := shellBlocks(section(string(readme), "## Quickstart"))
	if len(blocks) < 2 {
		t.Fatalf("README Quickstart has %d sh blocks, want the publish and the curl check", len(blocks))
	}
	srv := startOtad(t, otad, nil)
	m := regexp.MustCompile(`OTA_API_KEY=(ota_\S+)`).FindStringSubmatch(srv.stdout.String())
	if m == nil {
		t.Fatalf("otad printed no admin key:\n%s", srv.stdout.String())
	}
	key := m[1]

	realGo, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go on PATH")
	}
	bin := t.TempDir()
	shim := "#!/bin/sh\n" +
		"if [ \"$1\" = run ] && [ \"$2\" = ./cmd/ota ]; then shift 2; exec '" + ota + "' \"$@\"; fi\n" +
		"exec '" + realGo + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir() // no saved ota login of the person running the tests
	env := cleanEnv("PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))

	var checked bool
	for i, b := range blocks {
		script := strings.NewReplacer(readmeAddr, srv.base, readmeKey, key).Replace(b)
		// -e: every command must exit 0; -x: the failing one is named in the log.
		cmd := exec.Command("bash", "-eux", "-o", "pipefail", "-c", script)
		cmd.Dir = repoRoot
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("README Quickstart block %d failed: %v\n%s\nstdout:\n%s\nstderr:\n%s", i+1, err, b, out.String(), errb.String())
		}
		if strings.Contains(b, "curl ") {
			var a struct {
				Version string `json:"version"`
				URL     string `json:"url"`
			}
			if err := json.Unmarshal(out.Bytes(), &a); err != nil || a.Version != "1.0.1" || a.URL == "" {
				t.Fatalf("README curl check answered %q (%v), want version 1.0.1 with a URL", out.String(), err)
			}
			checked = true
		}
	}
	if !checked {
		t.Fatal("README Quickstart has no curl check")
	}
}

// section returns the text from the heading line to the next heading of the same level.
func section(doc, heading string) string {
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		return ""
	}
	rest := doc[i+1+len(heading):]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// shellBlocks returns the bodies of the ```sh fenced blocks in text.
func shellBlocks(text string) []string {
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}
