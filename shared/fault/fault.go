// Package fault names the kind of a failure below the HTTP layer. Packages such as
// publish and blob say what went wrong (invalid input, a missing object, ...); only
// the API decides which HTTP status each kind is answered with.
package fault

import (
	"errors"
	"fmt"
)

// Kind is what kind of failure an error is. The zero Kind is Internal: an error
// that names no kind is the server's fault.
type Kind int

const (
	Internal      Kind = iota // unexpected: the server's fault
	Invalid                   // the request's input is malformed
	NotFound                  // what the request names does not exist
	Conflict                  // the request clashes with the current state
	Unprocessable             // well-formed input refused on its content (a bundle that fails validation)
	TooLarge                  // the input exceeds a limit
	StorageFull               // no storage space left: the operator must act
	Unavailable               // a dependency is down or busy: retry later
)

var kindNames = [...]string{"internal", "invalid", "not_found", "conflict", "unprocessable", "too_large", "storage_full", "unavailable"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Kinded is an error that knows its kind.
type Kinded interface {
	error
	FaultKind() Kind
}

// KindOf returns the kind of the first error in err's tree that names one, and
// Internal when none does (nil included).
func KindOf(err error) Kind {
	var k Kinded
	if errors.As(err, &k) {
		return k.FaultKind()
	}
	return Internal
}

// sentinel is a fixed error of one kind, comparable with errors.Is.
type sentinel struct {
	kind Kind
	msg  string
}

func (e *sentinel) Error() string   { return e.msg }
func (e *sentinel) FaultKind() Kind { return e.kind }

// New returns a distinct error of kind k, for package-level sentinels.
func New(k Kind, msg string) error { return &sentinel{kind: k, msg: msg} }
