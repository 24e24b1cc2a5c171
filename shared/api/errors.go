package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/otakit/ota/shared/diskfull"
	"github.com/otakit/ota/shared/fault"
	"github.com/otakit/ota/shared/wire"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, wire.ErrorBody{Error: code, Message: msg})
}

// kindStatus is the one place a failure kind from below the API (publish, blob; see
// package fault) becomes an HTTP status.
var kindStatus = map[fault.Kind]int{
	fault.Invalid:       http.StatusBadRequest,
	fault.NotFound:      http.StatusNotFound,
	fault.Conflict:      http.StatusConflict,
	fault.Unprocessable: http.StatusUnprocessableEntity,
	fault.TooLarge:      http.StatusRequestEntityTooLarge,
	fault.StorageFull:   http.StatusInsufficientStorage,
	fault.Unavailable:   http.StatusServiceUnavailable,
}

// statusOf is the HTTP status of a failure kind; Internal (and any kind not
// mapped) is 500.
func statusOf(k fault.Kind) int {
	if st, ok := kindStatus[k]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// badRequest is a client error with a stable code, produced while reading input.
type badRequest struct {
	Status int
	Code   string
	Msg    string
}

func (e *badRequest) Error() string { return e.Code + ": " + e.Msg }

func errBad(code, format string, a ...any) *badRequest {
	return &badRequest{Status: http.StatusBadRequest, Code: code, Msg: fmt.Sprintf(format, a...)}
}

// decodeJSON reads one JSON value of at most limit bytes into v. Unknown fields are
// allowed (clients add fields over time); wrong types, trailing data and oversized
// bodies are refused with a stable code.
func decodeJSON(r *http.Request, limit int64, v any) error {
	body := http.MaxBytesReader(nil, r.Body, limit)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			return &badRequest{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Msg: fmt.Sprintf("body exceeds %d bytes", limit)}
		case errors.As(err, &typeErr):
			return errBad("invalid_type", "field %q must be %s", typeErr.Field, typeErr.Type)
		case errors.Is(err, io.EOF):
			return errBad("empty_body", "request body is empty")
		default:
			return errBad("invalid_json", "body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	if dec.More() {
		return errBad("invalid_json", "unexpected data after the JSON value")
	}
	return nil
}

// writeErr answers err: client errors with their status and code, a lack of storage
// space as 507 with what to do, anything else as 500 (logged, with a generic message
// so internals do not leak).
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var br *badRequest
	if errors.As(err, &br) {
		writeError(w, br.Status, br.Code, br.Msg)
		return
	}
	if s.storageFull(r, err) {
		writeError(w, http.StatusInsufficientStorage, diskfull.Code, diskfull.Advice)
		return
	}
	s.Log.Error("request failed", "path", redactPath(r.URL.Path), "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "internal error")
}

// storageFull reports (and logs) whether err is a lack of storage space: a full disk
// or quota under the objects folder, bbolt or temp files, or a full S3-compatible
// server. Such a request is answered 507, in each protocol's own error shape, so that
// the operator learns what to do instead of reading "internal error".
func (s *Server) storageFull(r *http.Request, err error) bool {
	if !diskfull.Is(err) {
		return false
	}
	s.Log.Error("request failed: out of storage space", "path", redactPath(r.URL.Path), "err", err)
	return true
}
