// Package diskfull recognizes "out of storage space" errors from every storage layer
// (the local objects folder, bbolt, temp files, S3-compatible servers) so that a
// request that failed for lack of space is answered 507 with what to do, and a
// release whose ingest failed that way is marked failed instead of staying pending.
package diskfull

import (
	"errors"
	"net/http"
	"strings"
	"syscall"

	berrors "go.etcd.io/bbolt/errors"
)

// Code is the stable error code of a refusal for lack of space.
const Code = "insufficient_storage"

// Advice is what an operator can do about it; API answers and failed releases carry it.
const Advice = "the server is out of storage space: free disk space on the server " +
	"(or raise its quota), or delete old releases with `ota cleanup --keep N --now`, then retry"

// errnos mean "no space": a full file system or an exhausted disk quota. Windows adds
// its own codes (diskfull_windows.go).
var errnos = append([]syscall.Errno{syscall.ENOSPC, syscall.EDQUOT}, platformErrnos...)

// texts are the errnos' messages. bbolt formats some errors with %s ("file resize
// error: no space left on device" when its file cannot grow), which drops the errno,
// so only the text is left to recognize.
var texts = func() []string {
	out := make([]string, len(errnos))
	for i, e := range errnos {
		out[i] = strings.ToLower(e.Error())
	}
	return out
}()

// s3Codes are the error codes S3-compatible servers answer when they run out of
// space (MinIO, and the generic names others use). AWS S3 and DynamoDB have no such
// error: their size limits are per object or item and are refused as bad requests.
var s3Codes = map[string]bool{
	"XMinioStorageFull":   true,
	"StorageFull":         true,
	"InsufficientStorage": true,
	"QuotaExceeded":       true, // Ceph RGW: the user's or bucket's quota is used up
}

// Is reports whether err means the storage is out of space or over its quota.
func Is(err error) bool {
	if err == nil {
		return false
	}
	for _, e := range errnos {
		if errors.Is(err, e) {
			return true
		}
	}
	// bbolt's own limit: the data file may not grow past Options.MaxSize.
	if errors.Is(err, berrors.ErrMaxSizeReached) {
		return true
	}
	// The AWS SDK's errors, matched by their methods so this package does not link it.
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) && s3Codes[coded.ErrorCode()] {
		return true
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() == http.StatusInsufficientStorage {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, t := range texts {
		if strings.Contains(msg, t) {
			return true
		}
	}
	return false
}
