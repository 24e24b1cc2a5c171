package templatetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/otakit/ota/shared/api"
)

// TestFunctionsLinkOnlyTheirHandlers keeps each Lambda binary free of the other
// groups' handlers (and what only they use: ingest, bundle building, ...). The
// linker keeps every function a reachable function mentions, so one function that
// lists routes of several groups would put every handler in every binary.
func TestFunctionsLinkOnlyTheirHandlers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every API function for linux/arm64")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	handlers := map[api.Group]map[string]bool{} // group -> handler symbol names
	for _, r := range api.Routes() {
		name := runtime.FuncForPC(reflect.ValueOf(r.Handler).Pointer()).Name()
		if handlers[r.Group] == nil {
			handlers[r.Group] = map[string]bool{}
		}
		handlers[r.Group][name] = true
	}
	tmp := t.TempDir()
	for _, s := range specs {
		if s.Group == "" {
			continue
		}
		bin := filepath.Join(tmp, s.Dir)
		// Symbols kept (no -s): the same link as the deployed build otherwise.
		build := exec.Command(goTool, "build", "-trimpath", "-tags", "lambda.norpc", "-o", bin, "./functions/"+s.Dir)
		build.Dir = repoRoot(t)
		build.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./functions/%s: %v\n%s", s.Dir, err, out)
		}
		out, err := exec.Command(goTool, "tool", "nm", bin).Output()
		if err != nil {
			t.Fatalf("go tool nm %s: %v", s.Dir, err)
		}
		linked := map[string]bool{}
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) >= 3 {
				linked[f[len(f)-1]] = true
			}
		}
		for g, hs := range handlers {
			for h := range hs {
				own := handlers[s.Group][h]
				switch {
				case own && !linked[h]:
					t.Errorf("functions/%s: own handler %s not found in the binary (symbol names changed?)", s.Dir, h)
				case !own && linked[h]:
					t.Errorf("functions/%s links %s, a handler of group %s: mount only api.<Group>Routes() and keep each route function to one group", s.Dir, h, g)
				}
			}
		}
	}
}
