package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/otakit/ota/shared/bundle"
	"github.com/otakit/ota/shared/delta"
	"github.com/otakit/ota/shared/wire"
)

// download fetches url into <dir>/downloads/<sha256>, resuming a partial earlier
// download with a Range request, and verifies size and SHA-256. It returns the path
// and how many bytes this call transferred.
func (c *Client) download(ctx context.Context, url, wantSHA string, size int64) (string, int64, error) {
	if len(wantSHA) != 64 {
		return "", 0, errors.New("download: the server gave no sha256 to verify against")
	}
	dir := filepath.Join(c.cfg.Dir, "downloads")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", 0, err
	}
	final := filepath.Join(dir, wantSHA)
	if ok, _ := fileHasSHA(final, wantSHA); ok {
		return final, 0, nil
	}
	part := final + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", 0, err
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "", 0, err
	}
	if off > 0 && (size <= 0 || off < size) {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
	case http.StatusOK: // no resume: start over
		if err := f.Truncate(0); err != nil {
			return "", 0, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", 0, err
		}
	default:
		return "", 0, fmt.Errorf("download: status %d", resp.StatusCode)
	}
	n, err := io.Copy(f, resp.Body)
	if err != nil {
		return "", n, fmt.Errorf("download interrupted after %d bytes (will resume): %w", n, err)
	}
	c.fault("downloaded")
	if err := f.Sync(); err != nil {
		return "", n, err
	}
	if ok, err := fileHasSHA(part, wantSHA); err != nil || !ok {
		os.Remove(part) // corrupt: the next attempt starts over
		return "", n, fmt.Errorf("download: sha256 mismatch")
	}
	return final, n, os.Rename(part, final)
}

func fileHasSHA(path, want string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == want, nil
}

// applyPatch downloads a tree patch and applies it to the live tree into out.
func (c *Client) applyPatch(ctx context.Context, cur string, p wire.CheckPatch, out string) (int64, error) {
	path, n, err := c.download(ctx, p.URL, p.SHA256, p.Size)
	if err != nil {
		return n, err
	}
	defer os.Remove(path)
	f, err := os.Open(path)
	if err != nil {
		return n, err
	}
	defer f.Close()
	old := os.DirFS(filepath.Join(c.cfg.Dir, "versions", cur))
	if err := delta.Apply(ctx, old, f, out); err != nil {
		return n, fmt.Errorf("apply patch from %s: %w", cur, err)
	}
	return n, nil
}

// fullBundle downloads the zip, validates it like the server does and unpacks it.
func (c *Client) fullBundle(ctx context.Context, a checkAnswer, out string) (int64, error) {
	u := a.ArtifactURL
	if u == "" {
		u = a.URL
	}
	path, n, err := c.download(ctx, u, a.SHA256, a.Size)
	if err != nil {
		return n, err
	}
	defer os.Remove(path)
	f, err := os.Open(path)
	if err != nil {
		return n, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return n, err
	}
	m, err := bundle.Inspect(f, st.Size(), bundle.DefaultLimits())
	if err != nil {
		return n, fmt.Errorf("bundle rejected: %w", err)
	}
	err = bundle.Walk(f, st.Size(), m, func(bf bundle.File, rd io.Reader) error {
		dst := filepath.Join(out, filepath.FromSlash(bf.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		w, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, rd); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	})
	if err != nil {
		return n, fmt.Errorf("unpack: %w", err)
	}
	return n, nil
}

// replaceSymlink points link at target with one rename (atomic on POSIX).
func replaceSymlink(target, link string) error {
	tmp := link + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("symlink: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		return fmt.Errorf("switch %s: %w", filepath.Base(link), err)
	}
	return syncDir(filepath.Dir(link))
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// syncTree flushes every file of a freshly built tree before it becomes visible.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
