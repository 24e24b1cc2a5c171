package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/wire"
)

// client is a small typed client for the management API (/v1).
type client struct {
	base string // server base URL without a trailing slash
	key  string // API key; never printed
	http *http.Client
}

// newClient checks the server URL; a missing key is reported by the first call that
// needs one (so `ota --help` and local commands work without it).
func newClient(server, key string) (*client, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid --server %q: want http(s)://host[:port]", server)
	}
	return &client{base: strings.TrimRight(server, "/"), key: key, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// APIError is a refusal from the server: its HTTP status and stable error code.
type APIError struct {
	Status  int
	Code    string
	Message string
	Next    string // what is missing and the command that fixes it (nextStep), or ""
}

func (e *APIError) Error() string {
	if e.outOfSpace() {
		return outOfSpaceHelp + fmt.Sprintf(" (HTTP %d %s)", e.Status, e.Code)
	}
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Next != "" {
		return fmt.Sprintf("%s (HTTP %d %s: %s)", e.Next, e.Status, e.Code, msg)
	}
	return fmt.Sprintf("server refused (HTTP %d %s): %s", e.Status, e.Code, msg)
}

// outOfSpaceHelp explains a server that ran out of storage space (HTTP 507, or a
// release failed with insufficient_storage) in words an app team can act on.
const outOfSpaceHelp = "the server is out of disk space: free space on the server or run ota cleanup --keep N --now, then run the same command again"

func (e *APIError) outOfSpace() bool {
	return e.Status == http.StatusInsufficientStorage || e.Code == "insufficient_storage"
}

// isOutOfSpace reports whether err is the server's refusal for lack of storage space.
func isOutOfSpace(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.outOfSpace()
}

// errorCode returns the server's error code of err ("" when err is not an APIError).
func errorCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// decodeError turns a non-2xx response into an APIError, with or without a JSON body.
func decodeError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e wire.ErrorBody
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return &APIError{Status: resp.StatusCode, Code: e.Error, Message: e.Message}
	}
	code := "http_" + strconv.Itoa(resp.StatusCode)
	msg := strings.TrimSpace(string(body))
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return &APIError{Status: resp.StatusCode, Code: code, Message: msg}
}

// do sends a JSON request to path (relative to the server) and decodes a JSON answer
// into out (when out is not nil).
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	if c.key == "" {
		return errors.New("no API key: pass --key, set OTA_API_KEY or run ota login")
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the server at %s: %w", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := decodeError(resp)
		var ae *APIError
		if errors.As(err, &ae) {
			code := ae.Code
			if resp.StatusCode == http.StatusUnauthorized {
				code = "unauthorized" // a proxy's bare 401 means the same
			}
			if ae.Next = nextStep(code, path); ae.Next != "" {
				return ae
			}
		}
		if resp.StatusCode == http.StatusForbidden {
			return fmt.Errorf("%w (the key lacks admin rights or is not scoped to this app)", err)
		}
		return err
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("unexpected answer from %s %s: %w", method, path, err)
	}
	return nil
}

// unwrapURLError drops the "Post \"url\": " prefix net/http adds (the URL is already said).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func esc(s string) string { return url.PathEscape(s) }

// ---- apps

func (c *client) createApp(ctx context.Context, in wire.AppInput) (wire.AppView, error) {
	var a wire.AppView
	return a, c.do(ctx, "POST", "/v1/apps", in, &a)
}

func (c *client) listApps(ctx context.Context) ([]wire.AppView, error) {
	var out wire.AppsAnswer
	return out.Apps, c.do(ctx, "GET", "/v1/apps", nil, &out)
}

func (c *client) updateApp(ctx context.Context, id string, in wire.AppInput) (wire.AppView, error) {
	var a wire.AppView
	return a, c.do(ctx, "PATCH", "/v1/apps/"+esc(id), in, &a)
}

func (c *client) getApp(ctx context.Context, id string) (wire.AppView, error) {
	var a wire.AppView
	return a, c.do(ctx, "GET", "/v1/apps/"+esc(id), nil, &a)
}

// ---- releases

func (c *client) createRelease(ctx context.Context, app string, in publish.Input) (wire.CreateReleaseAnswer, error) {
	var out wire.CreateReleaseAnswer
	return out, c.do(ctx, "POST", "/v1/apps/"+esc(app)+"/releases", in, &out)
}

func (c *client) listReleases(ctx context.Context, app string) ([]release.Release, error) {
	var out wire.ReleasesAnswer
	return out.Releases, c.do(ctx, "GET", "/v1/apps/"+esc(app)+"/releases", nil, &out)
}

// releaseOut is wire.ReleaseDetail in the field order `ota release get --json`
// has always printed (release first).
type releaseOut struct {
	Release release.Release  `json:"release"`
	Patches []wire.PatchView `json:"patches"`
}

func (c *client) getRelease(ctx context.Context, app, version string) (releaseOut, error) {
	var out releaseOut
	return out, c.do(ctx, "GET", "/v1/apps/"+esc(app)+"/releases/"+esc(version), nil, &out)
}

// completeRelease tells the server the upload is done (it validates the bundle now
// where no S3 event will, e.g. otad on S3) and returns the release.
func (c *client) completeRelease(ctx context.Context, app, version string) (wire.ReleaseAnswer, error) {
	var out wire.ReleaseAnswer
	return out, c.do(ctx, "POST", "/v1/apps/"+esc(app)+"/releases/"+esc(version)+"/complete", nil, &out)
}

func (c *client) deleteRelease(ctx context.Context, app, version string) error {
	return c.do(ctx, "DELETE", "/v1/apps/"+esc(app)+"/releases/"+esc(version), nil, nil)
}

// upload sends the release bytes to the presigned upload. Headers are sent as given
// (Content-Length becomes the request's length; Host is the URL's).
func (c *client) upload(ctx context.Context, up blob.Upload, body io.Reader, size int64) error {
	method := up.Method
	if method == "" {
		method = "PUT"
	}
	req, err := http.NewRequestWithContext(ctx, method, up.URL, body)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	req.ContentLength = size
	for k, v := range up.Headers {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Host":
			continue
		}
		req.Header.Set(k, v)
	}
	// No client timeout here: big bundles on slow links take a while; ctx cancels.
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		return fmt.Errorf("upload failed: %w", unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("upload failed: %w", decodeError(resp))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// ---- channels

// noChannelFields reports whether `ota channel set` was given nothing to change.
func noChannelFields(in wire.ChannelInput) bool {
	return in.Version == nil && in.Public == nil && in.AllowSelfSet == nil && in.NoEmulator == nil && in.NoDevBuild == nil
}

// channelOut is what `ota channel get/set` print: wire.ChannelDetail, or the
// wire.ChannelAnswer of a change, which has no history (hence omitempty).
type channelOut struct {
	Channel release.Channel      `json:"channel"`
	History []store.ChannelEvent `json:"history,omitempty"`
}

func (c *client) setChannel(ctx context.Context, app, name string, in wire.ChannelInput) (channelOut, error) {
	var out channelOut
	return out, c.do(ctx, "PUT", "/v1/apps/"+esc(app)+"/channels/"+esc(name), in, &out)
}

func (c *client) getChannel(ctx context.Context, app, name string) (channelOut, error) {
	var out channelOut
	return out, c.do(ctx, "GET", "/v1/apps/"+esc(app)+"/channels/"+esc(name), nil, &out)
}

func (c *client) listChannels(ctx context.Context, app string) ([]release.Channel, error) {
	var out wire.ChannelsAnswer
	return out.Channels, c.do(ctx, "GET", "/v1/apps/"+esc(app)+"/channels", nil, &out)
}

// ---- keys

func (c *client) createKey(ctx context.Context, in wire.KeyInput) (wire.CreateKeyAnswer, error) {
	var out wire.CreateKeyAnswer
	return out, c.do(ctx, "POST", "/v1/keys", in, &out)
}

func (c *client) listKeys(ctx context.Context) ([]store.APIKey, error) {
	var out wire.KeysAnswer
	return out.Keys, c.do(ctx, "GET", "/v1/keys", nil, &out)
}

func (c *client) revokeKey(ctx context.Context, id string) (wire.RevokeKeyAnswer, error) {
	var out wire.RevokeKeyAnswer
	return out, c.do(ctx, "DELETE", "/v1/keys/"+esc(id), nil, &out)
}
