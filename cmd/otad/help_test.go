package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// --help must end in flag.ErrHelp (main exits 0 on it) and name the environment
// variable beside each flag that has one.
func TestHelpListsEnv(t *testing.T) {
	var o options
	fs := newFlagSet(&o)
	var out bytes.Buffer
	fs.SetOutput(&out)
	if err := fs.Parse([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v, want flag.ErrHelp", err)
	}
	help := out.String()
	for _, want := range []string{"--data DIR (OTA_DATA)", "--addr HOST:PORT (OTA_ADDR)", "OTA_ADMIN_KEY"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if env := flagEnv[f.Name]; env != "" && !strings.Contains(help, "--"+f.Name+" ") {
			t.Errorf("flag %s missing from help", f.Name)
		}
	})
	for name := range flagEnv {
		if fs.Lookup(name) == nil {
			t.Errorf("flagEnv names unknown flag %s", name)
		}
	}
	if err := run(slog.New(slog.NewTextHandler(io.Discard, nil)), []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h: %v, want flag.ErrHelp", err)
	}
}
