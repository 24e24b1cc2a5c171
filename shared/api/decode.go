package api

// Input limits. Every body, field, query string and header a device or client sends
// is bounded where it is decoded, and going over a limit is a 4xx with a stable code
// in the protocol's own error form, never a 5xx or a write. Each protocol names its
// limits next to its decoding (capgo.go, nativeupdate.go, flux.go, seed.go,
// checkdevice.go, device.go, manage.go); docs/protocols.md (Input limits) has the
// table. This file holds what they share.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// jsonLimits bound one JSON body. Depth, Items and String also cover fields the
// server ignores: they are parsed all the same.
type jsonLimits struct {
	Body   int64 // bytes of the whole body
	Depth  int   // nesting of arrays and objects (1: a flat object)
	Items  int   // elements of any one array, members of any one object
	String int   // bytes of any one string as sent (escapes included), keys too
}

// Codes of the limits, the same in every protocol.
const (
	codeBodyTooLarge   = "body_too_large"  // 413
	codeTooDeep        = "json_too_deep"   // 400
	codeTooManyItems   = "too_many_items"  // 413
	codeFieldTooLong   = "field_too_long"  // 400
	codeQueryTooLong   = "query_too_long"  // 400
	codeBodyUnreadable = "body_unreadable" // 400: the client stopped sending mid-body
)

// decodeBody reads one JSON value within lim into v: the bytes are read (at most
// lim.Body, or Config.MaxJSONBody when that is lower), their shape checked against
// lim, and only then decoded, so a hostile shape costs no more than its bytes.
func (s *Server) decodeBody(r *http.Request, lim jsonLimits, v any) error {
	if c := s.cfg.MaxJSONBody; c > 0 && c < lim.Body {
		lim.Body = c
	}
	data, err := readBody(r, lim.Body)
	if err != nil {
		return err
	}
	if err := lim.check(data); err != nil {
		return err
	}
	// decodeJSON gives wrong types, bad syntax, trailing data and an empty body their
	// codes; it reads the bytes just checked.
	r.Body = io.NopCloser(bytes.NewReader(data))
	return decodeJSON(r, lim.Body, v)
}

// readBody reads the whole body, refusing more than limit bytes.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, errTooLarge(limit)
	case err != nil:
		return nil, errBad(codeBodyUnreadable, "reading the body: %v", err)
	}
	return data, nil
}

func errTooLarge(limit int64) *badRequest {
	return &badRequest{Status: http.StatusRequestEntityTooLarge, Code: codeBodyTooLarge, Msg: fmt.Sprintf("body exceeds %d bytes", limit)}
}

// check walks data once and refuses it when it nests deeper, holds a longer array
// or object, or a longer string than lim allows. Syntax is not its business (the
// decoder that runs next refuses bad JSON); it never fails on input it cannot read.
func (lim jsonLimits) check(data []byte) error {
	var counts []int // items seen so far in each open array or object
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			start := i
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if n := i - start - 1; lim.String > 0 && n > lim.String {
				return errBad(codeFieldTooLong, "a string is longer than %d bytes", lim.String)
			}
		case '[', '{':
			if lim.Depth > 0 && len(counts) >= lim.Depth {
				return errBad(codeTooDeep, "JSON nesting deeper than %d levels", lim.Depth)
			}
			counts = append(counts, 0)
		case ']', '}':
			if len(counts) > 0 {
				counts = counts[:len(counts)-1]
			}
		case ',':
			if len(counts) == 0 {
				continue
			}
			// n commas separate n+1 items.
			if counts[len(counts)-1]++; lim.Items > 0 && counts[len(counts)-1]+1 > lim.Items {
				return errTooMany("an array or object", lim.Items)
			}
		}
	}
	return nil
}

func errTooMany(what string, limit int) *badRequest {
	return &badRequest{Status: http.StatusRequestEntityTooLarge, Code: codeTooManyItems, Msg: fmt.Sprintf("%s has more than %d items", what, limit)}
}

// field is one decoded string and its limit in bytes.
type field struct {
	name  string
	value string
	max   int
}

// checkFields refuses the first field longer than its limit (field_too_long).
func checkFields(fields ...field) error {
	for _, f := range fields {
		if len(f.value) > f.max {
			return errBad(codeFieldTooLong, "%s is at most %d bytes", f.name, f.max)
		}
	}
	return nil
}

// queryTooLong reports whether the raw query string is longer than limit bytes:
// checked before the query is parsed, so a huge one is never split into values.
func queryTooLong(r *http.Request, limit int) bool { return len(r.URL.RawQuery) > limit }
