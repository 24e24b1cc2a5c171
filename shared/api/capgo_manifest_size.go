package api

// Capgo adapter, download size: POST /capgo/updates/manifest_size.
//
// getLatest({includeBundleSize: true}) (plugin 8.47.0 and later) works out which
// files of an update's manifest the device lacks and posts them to
// <updateUrl>/manifest_size (query dropped): the device description plus "version"
// (the update's) and "manifest" (the missing entries, as the update answer listed
// them). The plugin hands the JSON answer to the app as downloadSize; a non-2xx
// answer or an unreachable server turns into every file "unknown".
//
// The answer is Capgo backend's: {"totalSize", "knownFiles", "unknownFiles",
// "files"}, each requested file echoed with its "size" (bytes the device will
// download) or "error": "size_unknown". As there, entries without a file_hash are
// dropped, repeated entries are listed once, a size of 0 counts as unknown, and a
// version or app this server does not know makes every file unknown.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/release"
)

// capgoSizeRequest is the manifest_size body. Capgo's backend also reads "files"
// when "manifest" is absent.
type capgoSizeRequest struct {
	capgoInfo
	Version  string          `json:"version"`
	Manifest json.RawMessage `json:"manifest"`
	Files    json.RawMessage `json:"files"`
}

// capgoSizeFile is one file of the answer. file_name and download_url are null
// when the request had no string there.
type capgoSizeFile struct {
	FileName    *string `json:"file_name"`
	FileHash    string  `json:"file_hash"`
	DownloadURL *string `json:"download_url"`
	Size        int64   `json:"size,omitempty"`
	Error       string  `json:"error,omitempty"`
}

type capgoSizeAnswer struct {
	TotalSize    int64           `json:"totalSize"`
	KnownFiles   int             `json:"knownFiles"`
	UnknownFiles int             `json:"unknownFiles"`
	Files        []capgoSizeFile `json:"files"`
}

// capgoManifestSize answers how many bytes the listed files of a release weigh.
func (s *Server) capgoManifestSize(w http.ResponseWriter, r *http.Request) {
	var in capgoSizeRequest
	if err := s.capgoRead(r, capgoSizeLimits, &in, &in.capgoInfo); err != nil {
		s.capgoFail(w, r, err)
		return
	}
	if len(in.Version) > capgoMaxVersionName {
		s.capgoFail(w, r, errBad(codeFieldTooLong, "version is at most %d bytes", capgoMaxVersionName))
		return
	}
	if err := in.normalize(); err != nil {
		s.capgoFail(w, r, err)
		return
	}
	entries := in.Manifest
	if len(entries) == 0 || string(entries) == "null" {
		entries = in.Files
	}
	files, err := capgoSizeFiles(entries)
	if err != nil {
		s.capgoFail(w, r, err)
		return
	}
	sizes, err := s.capgoFileSizes(r.Context(), in.AppID, in.Version)
	if err != nil {
		s.capgoFail(w, r, err)
		return
	}
	a := capgoSizeAnswer{Files: files}
	for i := range a.Files {
		f := &a.Files[i]
		if n := sizes[f.FileHash]; n > 0 {
			f.Size = n
			a.TotalSize += n
			a.KnownFiles++
		} else {
			f.Error = "size_unknown"
			a.UnknownFiles++
		}
	}
	writeJSON(w, http.StatusOK, a)
}

// capgoSizeFiles reads the requested entries leniently, as Capgo's backend does
// (anything but an array is no entry; non-objects and entries without a string
// file_hash are dropped; other fields that are not strings read as null), but
// refuses oversized values.
func capgoSizeFiles(list json.RawMessage) ([]capgoSizeFile, error) {
	var entries []json.RawMessage
	if json.Unmarshal(list, &entries) != nil {
		entries = nil
	}
	if len(entries) > capgoMaxManifestFiles {
		return nil, &badRequest{Status: http.StatusRequestEntityTooLarge, Code: "too_many_files",
			Msg: fmt.Sprintf("at most %d manifest entries per request", capgoMaxManifestFiles)}
	}
	out := make([]capgoSizeFile, 0, len(entries))
	seen := map[[3]string]bool{}
	for i, raw := range entries {
		var e map[string]any
		if json.Unmarshal(raw, &e) != nil || e == nil {
			continue
		}
		hash, _ := e["file_hash"].(string)
		if hash == "" {
			continue
		}
		name, hasName := e["file_name"].(string)
		u, hasURL := e["download_url"].(string)
		if len(hash) > capgoMaxSizeFileHash || len(name) > capgoMaxSizeFileName || len(u) > capgoMaxSizeURL {
			return nil, errBad("invalid_manifest", "manifest entry %d: file_hash, file_name or download_url is too long", i)
		}
		key := [3]string{name, hash, u}
		if seen[key] {
			continue
		}
		seen[key] = true
		f := capgoSizeFile{FileHash: hash}
		if hasName {
			f.FileName = &name
		}
		if hasURL {
			f.DownloadURL = &u
		}
		out = append(out, f)
	}
	return out, nil
}

// capgoFileSizes maps the content hashes of a ready release of app to their sizes;
// empty when the app, the version or its manifest is unknown.
func (s *Server) capgoFileSizes(ctx context.Context, appID, version string) (map[string]int64, error) {
	if release.ValidVersion(version) != nil {
		return nil, nil
	}
	if _, err := s.state.app(ctx, appID); errors.Is(err, errUnknownApp) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	m, err := s.manifest(ctx, appID, version)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("manifest sizes of %s %s: %w", appID, version, err)
	}
	sizes := make(map[string]int64, len(m.Files))
	for _, f := range m.Files {
		sizes[f.SHA256] = f.Size
	}
	return sizes, nil
}
