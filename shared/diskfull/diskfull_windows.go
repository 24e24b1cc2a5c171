package diskfull

import "syscall"

// ERROR_HANDLE_DISK_FULL and ERROR_DISK_FULL (winerror.h).
var platformErrnos = []syscall.Errno{39, 112}
