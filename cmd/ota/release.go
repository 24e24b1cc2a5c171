package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/bundle"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/wire"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// publishOptions are the flags of `ota release DIR_OR_ZIP`.
type publishOptions struct {
	app, version, channel  string
	minNative, notes       string
	platform               string
	mandatory              bool
	buildNumber            int64
	signKey, fluxSecret    string
	capgoKey               string
	seedStatementKey       string // ECDSA P-256 key: the seed app's signed statement
	format                 string // "" (a zip bundle) or release.FormatChunk
	wait                   time.Duration
	pollInterval           time.Duration // tests shorten it
	showProgress, messages bool
}

// validate checks the flags before anything is read or sent.
func (o *publishOptions) validate() error {
	if err := needApp(o.app); err != nil {
		return err
	}
	if o.version == "" {
		return errors.New("--version is required (the new bundle version, e.g. 1.0.1)")
	}
	if err := release.ValidVersion(o.version); err != nil {
		return fmt.Errorf("--version: %w", err)
	}
	if o.channel != "" {
		if err := release.ValidChannel(o.channel); err != nil {
			return fmt.Errorf("--channel: %w", err)
		}
		if o.wait <= 0 {
			return errors.New("--channel needs the release to be ready: use a --wait greater than 0")
		}
	}
	if o.wait < 0 {
		return errors.New("--wait must not be negative")
	}
	if o.buildNumber < 0 {
		return errors.New("--build-number must not be negative")
	}
	switch o.platform {
	case "", "ios", "android", "electron", "web":
	default:
		return fmt.Errorf("--platform %q: use ios, android, electron or web (or leave it out for every platform)", o.platform)
	}
	switch o.format {
	case "", "zip":
		o.format = ""
	case release.FormatChunk:
		if o.capgoKey != "" || o.signKey != "" || o.seedStatementKey != "" {
			return errors.New("--format chunk publishes opaque bytes (a Flux chunk): --capgo-key, --sign-key and --seed-statement-key are for zip bundles")
		}
	default:
		return fmt.Errorf("--format %q: use zip (the default: a folder or .zip) or chunk (opaque bytes, e.g. a Flux chunk)", o.format)
	}
	if o.fluxSecret != "" && len(o.fluxSecret) < 16 {
		return errors.New("--flux-secret must have at least 16 characters")
	}
	if o.seedStatementKey != "" && o.capgoKey != "" {
		// An encrypted release is served to Capgo clients only: the seed app never sees it.
		return errors.New("--seed-statement-key signs a plain zip for the seed app; --capgo-key makes a release only Capgo devices get")
	}
	return nil
}

func newReleaseCmd(g *globals) *cobra.Command {
	o := &publishOptions{pollInterval: 300 * time.Millisecond}
	cmd := &cobra.Command{
		Use:   "release DIR_OR_ZIP --app APP_ID --version V [flags]",
		Short: "Publish a bundle (folder or zip); list, show and delete releases",
		Long: "Publish a web bundle: a folder is zipped deterministically, a .zip is used as it is.\n" +
			"The bundle is checked locally, hashed and signed here (the server never sees private keys),\n" +
			"uploaded, then ota waits until the server has validated it (status ready) and, with\n" +
			"--channel, points that channel at it. Versions are immutable: publishing the same version\n" +
			"with the same bytes again is a no-op, with other bytes it fails (version_exists).\n\n" +
			"Signatures: --sign-key adds RSA-PSS (salt 32) and PKCS#1 v1.5 signatures over the bundle's\n" +
			"SHA-256 (native-update clients); --flux-secret adds the Flux HMAC; --seed-statement-key adds\n" +
			"the seed app's signed statement (version, SHA-256, minimum native version; ECDSA P-256, key\n" +
			"from ota signing-key create --type ecdsa-p256); --capgo-key encrypts the bundle for Capgo\n" +
			"devices (key from `npx @capgo/cli key create`, i.e. .capgo_key_v2), which then serves only\n" +
			"Capgo clients. Signatures are made over the bytes served.\n\n" +
			"Versions: the seed app reads MAJOR.MINOR.PATCH[-suffix]; a version it would read as another\n" +
			"(1.2, 1.2.3.4, 1.2.3+build) is published with a warning on stderr.\n\n" +
			"Subcommands list, get and delete manage existing releases; to publish a folder named like\n" +
			"one of them, write it as ./list, ./get or ./delete.",
		Example: "  ota release ./www --app com.example.app --version 1.0.1 --channel production\n" +
			"  ota release dist.zip --app com.example.app --version 1.0.2 --sign-key signing_private.pem --min-native 2.0.0\n" +
			"  ota release app.flux --format chunk --app com.example.notes --version 2.0.0 --flux-secret $FLUX_SECRET --channel production\n" +
			"  ota release list --app com.example.app\n" +
			"  ota release get 1.0.1 --app com.example.app\n" +
			"  ota release delete 1.0.0 --app com.example.app",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("ota release needs one DIR_OR_ZIP to publish (got %d arguments); subcommands: list, get, delete (see ota release --help)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			o.messages = !g.json
			o.showProgress = !g.json && isTerminalWriter(cmd.ErrOrStderr())
			res, err := runPublish(cmd.Context(), cl, o, args[0], cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if g.json {
				return writeJSONOut(cmd.OutOrStdout(), res)
			}
			return printPublishResult(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.app, "app", "", "app id (required)")
	f.StringVar(&o.version, "version", "", "version of this bundle (required; never reused)")
	f.StringVar(&o.channel, "channel", "", "point this channel at the release once it is ready")
	f.StringVar(&o.minNative, "min-native", "", "lowest native app version this bundle runs on, e.g. 2.0.0")
	f.StringVar(&o.notes, "notes", "", "release notes")
	f.BoolVar(&o.mandatory, "mandatory", false, "devices must install this release")
	f.StringVar(&o.platform, "platform", "", "only for this platform: ios, android, electron, web (default every platform)")
	f.Int64Var(&o.buildNumber, "build-number", 0, "build number (default: the next one)")
	f.StringVar(&o.signKey, "sign-key", "", "RSA private key PEM for native-update signatures (see ota signing-key create)")
	f.StringVar(&o.fluxSecret, "flux-secret", "", "Flux HMAC secret: adds the Flux signature")
	f.StringVar(&o.seedStatementKey, "seed-statement-key", "", "ECDSA P-256 private key PEM: adds the seed app's signed statement (see ota signing-key create --type ecdsa-p256)")
	f.StringVar(&o.capgoKey, "capgo-key", "", "Capgo RSA private key (.capgo_key_v2): encrypt the bundle for Capgo devices")
	f.StringVar(&o.format, "format", "", "zip (default: a folder or .zip) or chunk: publish a file's bytes as they are (a Flux chunk too large for an inline upload)")
	f.DurationVar(&o.wait, "wait", 2*time.Minute, "how long to wait for the server to validate the upload (0 = do not wait)")

	cmd.AddCommand(newReleaseListCmd(g, "list"), newReleaseGetCmd(g), newReleaseDeleteCmd(g))
	return cmd
}

// newReleasesCmd is `ota releases`, the same as `ota release list`.
func newReleasesCmd(g *globals) *cobra.Command {
	return newReleaseListCmd(g, "releases")
}

func newReleaseListCmd(g *globals, use string) *cobra.Command {
	var app string
	c := &cobra.Command{
		Use:   use + " --app APP_ID",
		Short: "List an app's releases",
		Args:  cobra.NoArgs,
		RunE: apiCall[[]release.Release]{
			g: g, app: &app,
			call: func(ctx context.Context, cl *client, _ []string) ([]release.Release, error) {
				return cl.listReleases(ctx, app)
			},
			json:  listIn[release.Release]("releases"),
			human: printReleases,
		}.run,
	}
	c.Flags().StringVar(&app, "app", "", "app id (required)")
	return c
}

func newReleaseGetCmd(g *globals) *cobra.Command {
	var app string
	c := &cobra.Command{
		Use:   "get VERSION --app APP_ID",
		Short: "Show one release (status, error, checksums, signatures, patches)",
		Args:  exactArgs("VERSION"),
		RunE: apiCall[releaseOut]{
			g: g, app: &app,
			call: func(ctx context.Context, cl *client, args []string) (releaseOut, error) {
				return cl.getRelease(ctx, app, args[0])
			},
			human: printRelease,
		}.run,
	}
	c.Flags().StringVar(&app, "app", "", "app id (required)")
	return c
}

func newReleaseDeleteCmd(g *globals) *cobra.Command {
	var app string
	c := &cobra.Command{
		Use:   "delete VERSION --app APP_ID",
		Short: "Delete a release that no channel serves (its record and bundle are removed)",
		Args:  exactArgs("VERSION"),
		RunE: apiCall[string]{ // the deleted version
			g: g, app: &app,
			call: func(ctx context.Context, cl *client, args []string) (string, error) {
				return args[0], cl.deleteRelease(ctx, app, args[0])
			},
			json: func(version string) any {
				return map[string]any{"app": app, "version": version, "deleted": true}
			},
			human: func(w io.Writer, version string) error {
				_, err := fmt.Fprintf(w, "deleted release %s of %s\n", version, app)
				return err
			},
		}.run,
	}
	c.Flags().StringVar(&app, "app", "", "app id (required)")
	return c
}

// ---- publishing

// errUploadInterrupted: the upload was cut short (Ctrl-C). The release stays pending
// and nothing partial is stored; the same command again creates a fresh upload URL
// for the same version and bytes and finishes the job.
var errUploadInterrupted = errors.New("upload interrupted: run the same command again to resume")

// preparedBundle is the bytes to upload and what describes them.
type preparedBundle struct {
	body       io.ReaderAt // the bytes served (encrypted for Capgo when --capgo-key)
	size       int64
	sha256     string
	signatures release.Signatures
	files      int
	close      func() error
}

// spool is a bundle on disk: a folder's zip in a temp file (removed by Close), or the
// zip file given. A big bundle is thus never held in memory.
type spool struct {
	*os.File
	size int64
	temp bool
}

// Close closes the file and removes it if it is a temp copy.
func (s *spool) Close() error {
	err := s.File.Close()
	if s.temp {
		if rerr := os.Remove(s.Name()); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// loadBundle returns the zip of a folder (zipped deterministically into a temp file)
// or a zip file, checked with the same rules the server applies. The caller closes it.
func loadBundle(path string) (*spool, int, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !strings.ContainsAny(path, `/\`) && filepath.Ext(path) == "" {
			return nil, 0, fmt.Errorf("%s: no such folder or zip (to manage releases use: ota release list|get|delete)", path)
		}
		return nil, 0, err
	}
	var sp *spool
	if st.IsDir() {
		if sp, err = zipToTemp(path); err != nil {
			return nil, 0, err
		}
	} else {
		if !st.Mode().IsRegular() {
			return nil, 0, fmt.Errorf("%s: not a folder or a zip file", path)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, 0, err
		}
		sp = &spool{File: f, size: st.Size()}
		head := make([]byte, 4)
		if _, err := f.ReadAt(head, 0); err != nil || (!bytes.Equal(head, []byte("PK\x03\x04")) && !bytes.Equal(head, []byte("PK\x05\x06"))) {
			sp.Close()
			return nil, 0, fmt.Errorf("%s: not a zip file (publish a folder or a .zip)", path)
		}
	}
	m, err := bundle.Inspect(sp, sp.size, bundle.DefaultLimits())
	if err != nil {
		sp.Close()
		return nil, 0, fmt.Errorf("%s is not a valid bundle: %w", path, err)
	}
	return sp, len(m.Files), nil
}

// loadChunk opens a file published as opaque bytes (--format chunk): nothing is
// unpacked or checked but its size.
func loadChunk(path string) (*spool, int, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return nil, 0, fmt.Errorf("%s: --format chunk publishes one non-empty file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	return &spool{File: f, size: st.Size()}, 0, nil
}

// zipToTemp zips a folder into a temp file.
func zipToTemp(dir string) (*spool, error) {
	f, err := os.CreateTemp("", "ota-bundle-*.zip")
	if err != nil {
		return nil, fmt.Errorf("temp file: %w", err)
	}
	sp := &spool{File: f, temp: true}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = bundle.ZipDir(dir, bw); err == nil {
		err = bw.Flush()
	}
	if err == nil {
		sp.size, err = f.Seek(0, io.SeekCurrent)
	}
	if err != nil {
		sp.Close()
		return nil, err
	}
	return sp, nil
}

// prepareBundle loads the bundle and makes its signatures (and Capgo encryption).
func prepareBundle(path string, o *publishOptions) (*preparedBundle, error) {
	load := loadBundle
	if o.format == release.FormatChunk {
		load = loadChunk
	}
	zip, files, err := load(path)
	if err != nil {
		return nil, err
	}
	b := &preparedBundle{body: zip, size: zip.size, files: files, close: zip.Close}
	ok := false
	defer func() {
		if !ok {
			b.close()
		}
	}()
	if o.capgoKey != "" {
		pemBytes, err := os.ReadFile(o.capgoKey)
		if err != nil {
			return nil, fmt.Errorf("--capgo-key: %w", err)
		}
		// Capgo encryption works on the whole zip in memory.
		plain, err := io.ReadAll(io.NewSectionReader(zip, 0, zip.size))
		if err != nil {
			return nil, err
		}
		enc, sigs, err := capgoEncrypt(pemBytes, plain)
		if err != nil {
			return nil, fmt.Errorf("--capgo-key %s: %w", o.capgoKey, err)
		}
		b.body, b.size, b.signatures = bytes.NewReader(enc), int64(len(enc)), sigs
	}
	// One pass computes the SHA-256 and, with --flux-secret, the Flux HMAC (the
	// HMAC-SHA256 sign.FluxHMAC makes) over the bytes served.
	h := sha256.New()
	w := io.Writer(h)
	var mac hash.Hash
	if o.fluxSecret != "" {
		mac = hmac.New(sha256.New, []byte(o.fluxSecret))
		w = io.MultiWriter(h, mac)
	}
	if _, err := io.Copy(w, io.NewSectionReader(b.body, 0, b.size)); err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	b.sha256 = hex.EncodeToString(h.Sum(nil))
	if mac != nil {
		b.signatures.Flux = hex.EncodeToString(mac.Sum(nil))
	}
	if o.signKey != "" {
		pemBytes, err := os.ReadFile(o.signKey)
		if err != nil {
			return nil, fmt.Errorf("--sign-key: %w", err)
		}
		pss, pkcs1, err := rsaSignatures(pemBytes, b.sha256)
		if err != nil {
			return nil, fmt.Errorf("--sign-key %s: %w", o.signKey, err)
		}
		b.signatures.PSS, b.signatures.PKCS1 = pss, pkcs1
	}
	if o.seedStatementKey != "" {
		stmt, sig, err := seedStatement(o.seedStatementKey, o.version, b.sha256, o.minNative)
		if err != nil {
			return nil, err
		}
		b.signatures.Statement, b.signatures.StatementSig = stmt, sig
	}
	ok = true
	return b, nil
}

// runPublish publishes one bundle and returns what to print. It returns as soon as
// the release is ready: patches to it are the server's background work.
func runPublish(ctx context.Context, cl *client, o *publishOptions, path string, stderr io.Writer) (publishResult, error) {
	say := func(format string, a ...any) {
		if o.messages {
			fmt.Fprintf(stderr, format+"\n", a...)
		}
	}
	if o.format != release.FormatChunk {
		// Warnings, not errors: other clients order these versions fine. They go to
		// stderr even with --json (stdout stays the result).
		for _, w := range seedVersionWarnings(o.version, o.minNative) {
			fmt.Fprintln(stderr, "warning: "+w)
		}
	}
	b, err := prepareBundle(path, o)
	if err != nil {
		return publishResult{}, err
	}
	defer b.close()
	if o.format == release.FormatChunk {
		say("chunk %s: %s, sha256 %s", path, fmtBytes(b.size), b.sha256)
	} else {
		say("bundle %s: %d files, %s, sha256 %s", path, b.files, fmtBytes(b.size), b.sha256)
	}

	in := publish.Input{Version: o.version, SHA256: b.sha256, Size: b.size, Platform: o.platform,
		MinNative: o.minNative, Notes: o.notes, Mandatory: o.mandatory, BuildNumber: o.buildNumber, Signatures: b.signatures,
		Format: o.format}
	created, err := cl.createRelease(ctx, o.app, in)
	if err != nil {
		if errorCode(err) == "version_exists" {
			return publishResult{}, fmt.Errorf("%w\n(version %s of %s was published with other bytes; publish a new version)", err, o.version, o.app)
		}
		return publishResult{}, err
	}
	rel := created.Release
	res := publishResult{App: o.app, Version: rel.Version, SHA256: b.sha256, Size: b.size,
		Encrypted: b.signatures.SessionKey != "", Signatures: signatureList(b.signatures)}
	if created.Upload != nil {
		res.Uploaded = true
		if err := uploadWithProgress(ctx, cl, created.Upload, io.NewSectionReader(b.body, 0, b.size), b.size, o.showProgress, stderr); err != nil {
			if ctx.Err() != nil {
				return res, errUploadInterrupted
			}
			return res, err
		}
		say("uploaded %s", fmtBytes(b.size))
		if done, err := cl.completeRelease(ctx, o.app, o.version); err == nil {
			rel = done.Release
		} else if ctx.Err() != nil {
			return res, interruptedWaiting(o)
		} else if isOutOfSpace(err) {
			return res, err // nothing will validate it until space is freed: do not poll
		} // otherwise the upload event (S3) finishes it; keep polling below
	} else {
		say("release %s already exists with these bytes: nothing to upload", rel.Version)
	}

	if rel.Status == release.StatusPending && o.wait > 0 {
		say("waiting for the server to validate the bundle...")
		rel, err = waitReady(ctx, cl, o.app, o.version, o.wait, o.pollInterval)
		if err != nil {
			if ctx.Err() != nil {
				return res, interruptedWaiting(o)
			}
			return res, err
		}
	}
	res.Status, res.BuildNumber = string(rel.Status), rel.BuildNumber
	switch rel.Status {
	case release.StatusFailed:
		res.Error = rel.Error
		if strings.HasPrefix(rel.Error, "insufficient_storage") {
			return res, fmt.Errorf("release %s was not stored: %s", rel.Version, outOfSpaceHelp)
		}
		return res, fmt.Errorf("release %s failed validation on the server: %s", rel.Version, rel.Error)
	case release.StatusPending:
		if o.wait > 0 {
			return res, fmt.Errorf("release %s is still pending after %s: the server has not finished validating it; run the same command again to wait longer (see: ota release get %s --app %s)",
				rel.Version, o.wait, rel.Version, o.app)
		}
		return res, nil
	}
	if o.channel != "" {
		if err := pointChannel(ctx, cl, o.app, o.channel, rel.Version); err != nil {
			return res, fmt.Errorf("release %s is ready but setting channel %s failed: %w", rel.Version, o.channel, err)
		}
		res.Channel = o.channel
		say("channel %s now serves %s", o.channel, rel.Version)
	}
	return res, nil
}

// uploadWithProgress PUTs the bytes to the presigned upload, with a progress bar on
// stderr when it is a terminal.
func uploadWithProgress(ctx context.Context, cl *client, up *blob.Upload, body io.Reader, size int64, show bool, stderr io.Writer) error {
	if show {
		bar := newUploadBar(size, stderr)
		defer bar.Close()
		r := progressbar.NewReader(body, bar)
		body = &r
	}
	return cl.upload(ctx, *up, body, size)
}

// newUploadBar makes the upload's progress bar. The library starts its clock at the
// first write and draws at once, so the first rate was bytes over microseconds
// ("818 GB/s"): rendering the blank bar starts the clock now, and the throttle keeps
// the next draw (and so the first rate) at least barThrottle later. IEC units match
// fmtBytes.
func newUploadBar(size int64, w io.Writer) *progressbar.ProgressBar {
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("uploading"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(barThrottle),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionClearOnFinish(),
	)
}

const barThrottle = 250 * time.Millisecond

// interruptedWaiting: Ctrl-C after the upload; the server finishes on its own.
func interruptedWaiting(o *publishOptions) error {
	return fmt.Errorf("interrupted after the upload; the server validates it on its own (see: ota release get %s --app %s, or run the same command again)", o.version, o.app)
}

// pointChannel sets channel's stable release to version. The server refuses a write
// that lost to concurrent writers of the channel too many times (conflict); when
// the channel serves version by then (identical publishes racing), that is done,
// else the write is tried again a few times.
func pointChannel(ctx context.Context, cl *client, app, channel, version string) error {
	const attempts = 5
	for i := 1; ; i++ {
		_, err := cl.setChannel(ctx, app, channel, wire.ChannelInput{Version: &version})
		if err == nil || errorCode(err) != "conflict" || i == attempts {
			return err
		}
		if cur, gerr := cl.getChannel(ctx, app, channel); gerr == nil && cur.Channel.Stable == version && !cur.Channel.Builtin {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(i)*100*time.Millisecond + time.Duration(rand.Int64N(int64(100*time.Millisecond)))):
		}
	}
}

// waitReady polls the release until it leaves pending or the wait is over. While
// no worker holds the release's ingest lease (none started, or the one that did died
// with the server), it asks again through "complete": where the server validates
// uploads itself (otad) that starts or takes over the validation, so a publish
// interrupted by a server crash still finishes. Its answer is not needed (another
// publish of the release may still be uploading the bytes): the next poll reads it.
func waitReady(parent context.Context, cl *client, app, version string, wait, every time.Duration) (release.Release, error) {
	ctx, cancel := context.WithTimeout(parent, wait)
	defer cancel()
	for {
		out, err := cl.getRelease(ctx, app, version)
		if err != nil {
			if parent.Err() == nil && ctx.Err() != nil {
				return release.Release{Version: version, Status: release.StatusPending}, nil
			}
			return out.Release, err
		}
		if out.Release.Status != release.StatusPending {
			return out.Release, nil
		}
		if !out.Release.IngestLease.Held(time.Now()) {
			if done, err := cl.completeRelease(ctx, app, version); err == nil && done.Release.Status != release.StatusPending {
				return done.Release, nil
			}
		}
		select {
		case <-ctx.Done():
			return out.Release, nil
		case <-time.After(every):
		}
		if every < 2*time.Second {
			every += every / 2
		}
	}
}

// isTerminalWriter reports whether w is a terminal (progress bars only go there).
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

// seedStatement makes the seed app's statement and its signature with the ECDSA
// P-256 key in keyFile.
func seedStatement(keyFile, version, sha256hex, minNative string) (statement, signature string, err error) {
	pemBytes, err := os.ReadFile(keyFile)
	if err != nil {
		return "", "", fmt.Errorf("--seed-statement-key: %w", err)
	}
	key, err := sign.ParseP256PrivatePEM(pemBytes)
	if err != nil {
		return "", "", fmt.Errorf("--seed-statement-key %s: %w", keyFile, err)
	}
	statement, signature, err = sign.SignSeedStatement(key, version, sha256hex, minNative)
	if err != nil {
		return "", "", fmt.Errorf("--seed-statement-key %s: %w", keyFile, err)
	}
	return statement, signature, nil
}

// maxSafeInt is JavaScript's largest exact integer: the seed app's numbers are JS numbers.
const maxSafeInt = 1<<53 - 1

// seedReading is how the seed app reads a version: the first three dot parts, each
// an integer up to its first non-digit (missing = 0), and the text after the first
// "-" as a pre-release suffix. exact is false when a part is beyond JS's exact range.
func seedReading(v string) (reading string, exact bool) {
	core, suffix, _ := strings.Cut(v, "-")
	parts := strings.Split(core, ".")
	nums := make([]string, 3)
	exact = true
	for i := range nums {
		digits := ""
		if i < len(parts) {
			p := parts[i]
			end := 0
			for end < len(p) && p[end] >= '0' && p[end] <= '9' {
				end++
			}
			digits = p[:end]
		}
		n, err := strconv.ParseUint(digits, 10, 64)
		if digits != "" && (err != nil || n > maxSafeInt) {
			exact = false
		}
		nums[i] = strconv.FormatUint(n, 10)
	}
	reading = strings.Join(nums, ".")
	if suffix != "" {
		reading += "-" + suffix
	}
	return reading, exact
}

// seedVersionWarnings explains how the seed app would misread the version or the
// minimum native version. It treats versions that read alike as the same bundle (it
// installs any version not equal to its own), so a version it reads as another can
// be skipped; a minimum it misreads lets the gate pass or fail wrongly.
func seedVersionWarnings(version, minNative string) []string {
	var out []string
	if r, exact := seedReading(version); !exact {
		out = append(out, fmt.Sprintf("version %s has a part beyond 2^53: the seed app cannot compare it exactly", version))
	} else if r != version {
		out = append(out, fmt.Sprintf("version %s is not MAJOR.MINOR.PATCH[-suffix]: the seed app reads it as %s and treats the two as the same version (a device on one does not install the other)", version, r))
	}
	if minNative == "" {
		return out
	}
	// A short minimum (2.0) reads as 2.0.0, which means the same: only other losses matter.
	padded := minNative
	if core, suffix, hasSuffix := strings.Cut(minNative, "-"); strings.Count(core, ".") < 2 {
		padded = core + strings.Repeat(".0", 2-strings.Count(core, "."))
		if hasSuffix {
			padded += "-" + suffix
		}
	}
	if r, exact := seedReading(minNative); !exact || r != padded {
		out = append(out, fmt.Sprintf("--min-native %s is not MAJOR.MINOR.PATCH[-suffix]: the seed app reads it as %s", minNative, r))
	}
	return out
}
