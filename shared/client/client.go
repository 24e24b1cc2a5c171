// Package client is the Go device client: it checks for an update over the
// check-device protocol, downloads a patch or the full bundle (resuming), verifies
// it, builds the new tree in a staging folder and switches to it atomically, keeping
// the previous tree as the last known good one, then reports the outcome.
//
// Layout of the app folder:
//
//	<dir>/current      symlink to the live tree (versions/<v>); swapped with rename(2)
//	<dir>/previous     symlink to the last known-good tree before the switch
//	<dir>/versions/<v> complete, verified trees (never modified once there)
//	<dir>/staging/     trees and downloads being built (garbage after a crash)
//	<dir>/state.json   device id
//
// The live tree is never partial: current only ever names a complete folder, and
// replacing the symlink is one rename, so killing the process at any point leaves
// either the old or the new tree live.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/otakit/ota/shared/wire"
)

// Config names the app and where it lives.
type Config struct {
	Server   string // base URL of the OTA server
	AppID    string
	Channel  string // "" = the app's default channel
	Platform string // ios, android; "" = android
	Binary   string // native app version
	Token    string // device token of a protected app ("" = public app)
	Dir      string
	HTTP     *http.Client
	// Fault, when set, is called at each step; tests use it to crash the process at
	// chosen points.
	Fault func(step string)
}

// Client syncs one app folder.
type Client struct {
	cfg Config
}

// New returns a client; the folder is created if needed.
func New(cfg Config) (*Client, error) {
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 5 * time.Minute}
	}
	if cfg.Platform == "" {
		cfg.Platform = "android"
	}
	cfg.Server = strings.TrimRight(cfg.Server, "/")
	for _, d := range []string{"versions", "staging"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("prepare %s: %w", cfg.Dir, err)
		}
	}
	return &Client{cfg: cfg}, nil
}

func (c *Client) fault(step string) {
	if c.cfg.Fault != nil {
		c.cfg.Fault(step)
	}
}

// Result says what a sync did.
type Result struct {
	Action  string `json:"action"` // up_to_date, updated, reverted, incompatible, none
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Via     string `json:"via,omitempty"` // patch or full
	Bytes   int64  `json:"bytes"`         // downloaded
	Message string `json:"message,omitempty"`
}

type state struct {
	DeviceID string `json:"device_id"`
}

// DeviceID returns the folder's persistent device id, creating it once.
func (c *Client) DeviceID() (string, error) {
	p := filepath.Join(c.cfg.Dir, "state.json")
	var st state
	if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &st) == nil && st.DeviceID != "" {
		return st.DeviceID, nil
	}
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6], u[8] = u[6]&0x0f|0x40, u[8]&0x3f|0x80
	st.DeviceID = fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
	b, _ := json.Marshal(st)
	return st.DeviceID, writeFileAtomic(p, b)
}

// Current returns the live version ("" when the built-in bundle is live).
func (c *Client) Current() string {
	target, err := os.Readlink(filepath.Join(c.cfg.Dir, "current"))
	if err != nil {
		return ""
	}
	return filepath.Base(target)
}

// LiveDir is the folder the app should load (empty when the built-in bundle is live).
func (c *Client) LiveDir() string {
	if c.Current() == "" {
		return ""
	}
	return filepath.Join(c.cfg.Dir, "current")
}

// checkAnswer decodes every check-device answer (see docs/protocols.md): an
// update, an incompatible one (a subset), the revert and no-update answers, or
// an error.
type checkAnswer struct {
	wire.CheckUpdate
	Revert bool   `json:"revert_to_builtin"`
	Error  string `json:"error"`
}

func (c *Client) check(ctx context.Context, device, current string) (checkAnswer, error) {
	var a checkAnswer
	body, _ := json.Marshal(wire.CheckRequest{DeviceID: device, ChannelName: c.cfg.Channel, Platform: c.cfg.Platform,
		BinaryVersion: c.cfg.Binary, CurrentUpdateID: current})
	req, err := http.NewRequestWithContext(ctx, "POST", c.cfg.Server+"/apps/"+c.cfg.AppID+"/channels/check-device", bytes.NewReader(body))
	if err != nil {
		return a, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return a, fmt.Errorf("check: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&a); err != nil {
		return a, fmt.Errorf("check: status %d, undecodable answer: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return a, fmt.Errorf("check: status %d: %s", resp.StatusCode, a.Error)
	}
	return a, nil
}

// Sync checks once and applies what the server says.
func (c *Client) Sync(ctx context.Context) (Result, error) {
	device, err := c.DeviceID()
	if err != nil {
		return Result{}, err
	}
	cur := c.Current()
	a, err := c.check(ctx, device, cur)
	if err != nil {
		return Result{}, err
	}
	c.fault("checked")
	switch {
	case a.Revert:
		if cur == "" {
			return Result{Action: "up_to_date"}, nil
		}
		if err := c.switchTo(""); err != nil {
			return Result{}, err
		}
		return Result{Action: "reverted", From: cur}, nil
	case !a.Available:
		return Result{Action: "up_to_date", From: cur}, nil
	case !a.Compatible:
		return Result{Action: "incompatible", To: a.Version, Message: "needs native version " + a.MinBinaryVersion}, nil
	case a.Version == cur:
		return Result{Action: "up_to_date", From: cur}, nil
	}
	res, err := c.install(ctx, cur, a)
	status, detail := "installed", ""
	if err != nil {
		status, detail = "failed", err.Error()
	}
	if rerr := c.report(ctx, device, a.Version, status, detail); rerr != nil && err == nil {
		res.Message = "installed, but the report failed: " + rerr.Error()
	}
	return res, err
}

// install builds the new tree (patch first, full bundle as the fallback) and switches.
func (c *Client) install(ctx context.Context, cur string, a checkAnswer) (Result, error) {
	res := Result{Action: "updated", From: cur, To: a.Version}
	final := filepath.Join(c.cfg.Dir, "versions", a.Version)
	if _, err := os.Stat(final); err == nil {
		// Already built by an earlier run that died before switching.
		return res, c.switchTo(a.Version)
	}
	stage, err := os.MkdirTemp(filepath.Join(c.cfg.Dir, "staging"), a.Version+"-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(stage)
	tree := filepath.Join(stage, "tree")

	built := false
	if p := findPatch(a.Patches, cur); p != nil {
		n, err := c.applyPatch(ctx, cur, *p, tree)
		res.Bytes += n
		if err == nil {
			built, res.Via = true, "patch"
		} else {
			os.RemoveAll(tree) // fall back to the full bundle
		}
	}
	if !built {
		n, err := c.fullBundle(ctx, a, tree)
		res.Bytes += n
		if err != nil {
			return res, err
		}
		res.Via = "full"
	}
	c.fault("built")
	if err := syncTree(tree); err != nil {
		return res, err
	}
	if err := os.Rename(tree, final); err != nil {
		return res, fmt.Errorf("move tree into place: %w", err)
	}
	c.fault("moved")
	return res, c.switchTo(a.Version)
}

func findPatch(ps []wire.CheckPatch, from string) *wire.CheckPatch {
	if from == "" {
		return nil
	}
	for i := range ps {
		if ps[i].From == from && ps[i].URL != "" {
			return &ps[i]
		}
	}
	return nil
}

// switchTo makes versions/<v> live ("" = the built-in bundle) and keeps the old one
// as previous. Each symlink changes with one rename.
func (c *Client) switchTo(version string) error {
	cur := filepath.Join(c.cfg.Dir, "current")
	if old, err := os.Readlink(cur); err == nil && filepath.Base(old) != version {
		if err := replaceSymlink(old, filepath.Join(c.cfg.Dir, "previous")); err != nil {
			return err
		}
	}
	c.fault("previous")
	if version == "" {
		if err := os.Remove(cur); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := replaceSymlink(filepath.Join("versions", version), cur); err != nil {
		return err
	}
	c.fault("switched")
	return c.prune()
}

// prune keeps only the live and previous trees.
func (c *Client) prune() error {
	keep := map[string]bool{}
	for _, l := range []string{"current", "previous"} {
		if t, err := os.Readlink(filepath.Join(c.cfg.Dir, l)); err == nil {
			keep[filepath.Base(t)] = true
		}
	}
	ents, err := os.ReadDir(filepath.Join(c.cfg.Dir, "versions"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !keep[e.Name()] {
			os.RemoveAll(filepath.Join(c.cfg.Dir, "versions", e.Name()))
		}
	}
	return nil
}

func (c *Client) report(ctx context.Context, device, version, status, detail string) error {
	body, _ := json.Marshal(wire.DeviceReport{AppID: c.cfg.AppID, DeviceID: device, Channel: c.cfg.Channel,
		Version: version, Status: status, Detail: detail})
	req, err := http.NewRequestWithContext(ctx, "POST", c.cfg.Server+"/v1/device/report", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("report: status %d", resp.StatusCode)
	}
	return nil
}
