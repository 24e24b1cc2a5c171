package bundle

import (
	"errors"
	"fmt"
)

// Stable error codes. Callers map them to API answers, so never rename one.
const (
	CodeZipInvalid       = "zip_invalid"       // not a zip, truncated, malformed, or bytes that contradict the headers
	CodeZipEmpty         = "zip_empty"         // no regular file to serve
	CodePathAbsolute     = "path_absolute"     // leading "/" or a drive letter such as "C:"
	CodePathTraversal    = "path_traversal"    // a ".." segment
	CodePathInvalid      = "path_invalid"      // backslash, NUL, control character, empty segment, bad UTF-8
	CodeSymlink          = "symlink"           // a symbolic link or another non-regular file
	CodeDuplicatePath    = "duplicate_path"    // two entries for one path (after cleaning, ignoring case), or a file used as a folder
	CodeTooManyEntries   = "too_many_entries"  // more entries than Limits.MaxEntries
	CodeFileTooLarge     = "file_too_large"    // one file above Limits.MaxFile
	CodeTooLarge         = "too_large"         // all files together above Limits.MaxTotal
	CodeCompressionRatio = "compression_ratio" // an entry or the archive inflates more than Limits.MaxRatio
	CodeNoIndexHTML      = "no_index_html"     // no index.html at the root or in a single top folder
	CodeEncryptedEntry   = "encrypted_entry"   // an entry with the encryption flag (or an AES method)
)

// Error is a bundle rejection with a stable Code and a human message.
type Error struct {
	Code string
	Msg  string
	err  error // underlying cause, if any
}

func (e *Error) Error() string { return e.Code + ": " + e.Msg }

// Unwrap returns the underlying cause, such as an archive/zip error.
func (e *Error) Unwrap() error { return e.err }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, &Error{Code: CodeSymlink}) works through wrapping.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// CodeOf returns the Code of the first *Error in err's chain, or "".
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func newErr(code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func wrapErr(code string, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...) + ": " + cause.Error(), err: cause}
}
