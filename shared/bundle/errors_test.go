package bundle

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestError(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	err := fmt.Errorf("upload: %w", wrapErr(CodeZipInvalid, cause, "read %q", "a.js"))
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"message", newErr(CodeSymlink, "%q is a link", "x").Error(), `symlink: "x" is a link`},
		{"code through wrapping", CodeOf(err), CodeZipInvalid},
		{"code of foreign error", CodeOf(cause), ""},
		{"is same code", errors.Is(err, &Error{Code: CodeZipInvalid}), true},
		{"is other code", errors.Is(err, &Error{Code: CodeSymlink}), false},
		{"unwraps to cause", errors.Is(err, io.ErrUnexpectedEOF), true},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}
