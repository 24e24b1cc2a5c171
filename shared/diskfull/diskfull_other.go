//go:build !windows

package diskfull

import "syscall"

var platformErrnos []syscall.Errno
