package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/wire"
)

// writeJSONOut prints v as indented JSON (the --json output of every command).
func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

// newKV starts a two-column field/value listing (no header).
func newKV(w io.Writer) *table {
	return &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
}

func (t *table) row(cols ...string) {
	for i, c := range cols {
		if c == "" {
			cols[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// fmtBytes shows a size the way people read it (1024-based units).
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// fmtTime shows a time in UTC to the minute ("" for the zero time).
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// ---- apps

func printApp(w io.Writer, a wire.AppView) error {
	t := newKV(w)
	t.row("id", a.ID)
	t.row("name", a.Name)
	t.row("default channel", a.DefaultChannel)
	t.row("flux secret", map[bool]string{true: "set", false: "not set"}[a.FluxSecretSet])
	t.row("device token", map[bool]string{true: "required (protected app)", false: "not required"}[a.Protected])
	t.row("signature", "native-update "+cmp.Or(a.NativeUpdateSignature, "default (pss when present)"))
	t.row("created", fmtTime(a.CreatedAt))
	return t.flush()
}

func printApps(w io.Writer, apps []wire.AppView) error {
	if len(apps) == 0 {
		_, err := fmt.Fprintln(w, "no apps (create one with: ota app create APP_ID)")
		return err
	}
	t := newTable(w, "ID", "NAME", "DEFAULT CHANNEL", "FLUX SECRET", "CREATED")
	for _, a := range apps {
		t.row(a.ID, a.Name, a.DefaultChannel, yesNo(a.FluxSecretSet), fmtTime(a.CreatedAt))
	}
	return t.flush()
}

// ---- releases

func printReleases(w io.Writer, rels []release.Release) error {
	if len(rels) == 0 {
		_, err := fmt.Fprintln(w, "no releases")
		return err
	}
	t := newTable(w, "VERSION", "STATUS", "BUILD", "SIZE", "CREATED", "MIN NATIVE")
	for _, r := range rels {
		status := string(r.Status)
		if r.Disabled {
			status += " (disabled)"
		}
		t.row(r.Version, status, strconv.FormatInt(r.BuildNumber, 10), fmtBytes(r.Size), fmtTime(r.CreatedAt), r.MinNative)
	}
	return t.flush()
}

func printRelease(w io.Writer, out releaseOut) error {
	r := out.Release
	t := newKV(w)
	t.row("app", r.AppID)
	t.row("version", r.Version)
	t.row("id", r.ID)
	t.row("status", string(r.Status))
	if r.Error != "" {
		t.row("error", r.Error)
	}
	t.row("build", strconv.FormatInt(r.BuildNumber, 10))
	t.row("sha256", r.SHA256)
	t.row("size", fmt.Sprintf("%s (%d bytes)", fmtBytes(r.Size), r.Size))
	t.row("platform", r.Platform)
	t.row("min native", r.MinNative)
	t.row("mandatory", yesNo(r.Mandatory))
	t.row("files", strconv.Itoa(r.Files))
	t.row("notes", r.Notes)
	t.row("signatures", signatureList(r.Signatures))
	t.row("created", fmtTime(r.CreatedAt))
	t.row("ready", fmtTime(r.ReadyAt))
	if err := t.flush(); err != nil {
		return err
	}
	if len(out.Patches) > 0 {
		fmt.Fprintln(w, "\nPatches to this release:")
		pt := newTable(w, "FROM", "SIZE", "SHA256")
		for _, p := range out.Patches {
			pt.row(p.From, fmtBytes(p.Size), p.SHA256)
		}
		return pt.flush()
	}
	return nil
}

// signatureList names the signature forms a release carries.
func signatureList(s release.Signatures) string {
	var forms []string
	if s.PSS != "" {
		forms = append(forms, "rsa-pss")
	}
	if s.PKCS1 != "" {
		forms = append(forms, "rsa-pkcs1")
	}
	if s.Flux != "" {
		forms = append(forms, "flux-hmac")
	}
	if s.SessionKey != "" {
		forms = append(forms, "capgo-encrypted (key "+s.KeyID+")")
	}
	if s.Statement != "" {
		forms = append(forms, "statement")
	}
	return strings.Join(forms, ", ")
}

// publishResult is what `ota release DIR` prints.
type publishResult struct {
	App         string `json:"app"`
	Version     string `json:"version"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	Status      string `json:"status"`
	BuildNumber int64  `json:"build_number"`
	Channel     string `json:"channel,omitempty"`
	Uploaded    bool   `json:"uploaded"` // false when the release already existed with these bytes
	Encrypted   bool   `json:"encrypted,omitempty"`
	Signatures  string `json:"signatures,omitempty"`
	Error       string `json:"error,omitempty"`
}

func printPublishResult(w io.Writer, r publishResult) error {
	t := newKV(w)
	t.row("app", r.App)
	t.row("version", r.Version)
	t.row("sha256", r.SHA256)
	t.row("size", fmt.Sprintf("%s (%d bytes)", fmtBytes(r.Size), r.Size))
	t.row("status", r.Status)
	t.row("build", strconv.FormatInt(r.BuildNumber, 10))
	t.row("channel", r.Channel)
	t.row("signatures", r.Signatures)
	if !r.Uploaded {
		t.row("note", "already published with these bytes (nothing uploaded)")
	}
	return t.flush()
}

// ---- channels

// channelTarget describes what a channel serves.
func channelTarget(c release.Channel) string {
	s := c.Stable
	if c.Builtin {
		s = "builtin"
	}
	if c.Rolling != nil {
		roll := fmt.Sprintf("%s at %g%%", c.Rolling.Version, c.Rolling.Percent)
		if c.Rolling.Halted {
			roll += " (halted)"
		}
		if s == "" {
			return "rolling " + roll
		}
		return s + " + rolling " + roll
	}
	return s
}

func channelFlags(c release.Channel) string {
	var f []string
	if c.Public {
		f = append(f, "public")
	}
	if c.AllowSelfSet {
		f = append(f, "allow-self-set")
	}
	if c.NoEmulator {
		f = append(f, "no-emulator")
	}
	if c.NoDevBuild {
		f = append(f, "no-dev-build")
	}
	return strings.Join(f, ",")
}

func printChannels(w io.Writer, chs []release.Channel) error {
	if len(chs) == 0 {
		_, err := fmt.Fprintln(w, "no channels (set one with: ota channel set CHANNEL --app APP_ID --version V)")
		return err
	}
	t := newTable(w, "CHANNEL", "SERVES", "FLAGS", "UPDATED")
	for _, c := range chs {
		t.row(c.Name, channelTarget(c), channelFlags(c), fmtTime(c.UpdatedAt))
	}
	return t.flush()
}

func printChannel(w io.Writer, out channelOut) error {
	c := out.Channel
	t := newKV(w)
	t.row("app", c.AppID)
	t.row("channel", c.Name)
	t.row("serves", channelTarget(c))
	t.row("public", yesNo(c.Public))
	t.row("allow self set", yesNo(c.AllowSelfSet))
	t.row("no emulator", yesNo(c.NoEmulator))
	t.row("no dev build", yesNo(c.NoDevBuild))
	t.row("updated", fmtTime(c.UpdatedAt))
	if err := t.flush(); err != nil {
		return err
	}
	if len(out.History) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nHistory (newest first):")
	ht := newTable(w, "AT", "ACTION", "BY", "SERVES")
	for _, e := range out.History {
		ht.row(fmtTime(e.At), e.Action, e.Actor, channelTarget(e.Channel))
	}
	return ht.flush()
}

// ---- keys

func keyApps(k store.APIKey) string { return strings.Join(k.Apps, ",") }

func printKeys(w io.Writer, ks []store.APIKey) error {
	if len(ks) == 0 {
		_, err := fmt.Fprintln(w, "no keys")
		return err
	}
	t := newTable(w, "ID", "NAME", "PREFIX", "APPS", "ADMIN", "CREATED", "REVOKED")
	for _, k := range ks {
		t.row(k.ID, k.Name, k.Prefix+"...", keyApps(k), yesNo(k.Admin), fmtTime(k.CreatedAt), fmtTime(k.RevokedAt))
	}
	return t.flush()
}
