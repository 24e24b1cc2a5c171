package diskfull

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.etcd.io/bbolt"
)

// TestRealENOSPC: the error a write to a full device really returns (/dev/full
// answers every write with ENOSPC), as the objects folder would see it.
func TestRealENOSPC(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full here: %v", err)
	}
	defer f.Close()
	_, err = f.Write([]byte("bundle bytes"))
	if err == nil {
		t.Fatal("write to /dev/full succeeded")
	}
	if !Is(fmt.Errorf("put files/ab/abc: %w", err)) {
		t.Fatalf("not recognized: %v", err)
	}
}

// TestBoltMaxSize: bbolt's own "cannot grow" error, from a real database whose file
// may not grow past a few pages.
func TestBoltMaxSize(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "meta.db"), 0o600, &bbolt.Options{MaxSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	big := make([]byte, 8<<10)
	var werr error
	for i := 0; i < 64 && werr == nil; i++ {
		werr = db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("t"))
			if err != nil {
				return err
			}
			return b.Put(fmt.Appendf(nil, "k%03d", i), big)
		})
	}
	if werr == nil {
		t.Fatal("bbolt grew past MaxSize")
	}
	if !Is(fmt.Errorf("bolt: put x/y: %w", werr)) {
		t.Fatalf("not recognized: %v", werr)
	}
}

func TestIs(t *testing.T) {
	resp := func(status int) *smithyhttp.Response {
		return &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: http.Header{}}}
	}
	s3Err := func(status int, code string) error {
		return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{Response: resp(status), Err: &smithy.GenericAPIError{Code: code, Message: "m"}},
		}}
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"ENOSPC in a PathError", &fs.PathError{Op: "write", Path: "objects/.tmp/put-1", Err: syscall.ENOSPC}, true},
		{"EDQUOT in a PathError", fmt.Errorf("put: %w", &fs.PathError{Op: "write", Path: "x", Err: syscall.EDQUOT}), true},
		{"ENOSPC in a SyscallError", os.NewSyscallError("fdatasync", syscall.ENOSPC), true},
		// bbolt formats these with %s: only the text is left.
		{"bbolt file resize", fmt.Errorf("bolt: put a/b: %w", fmt.Errorf("file resize error: %s", &fs.PathError{Op: "truncate", Path: "meta.db", Err: syscall.ENOSPC})), true},
		{"bbolt mmap allocate", fmt.Errorf("mmap allocate error: %s", syscall.EDQUOT), true},
		{"unrelated", fmt.Errorf("transact: %w", errors.New("condition failed")), false},
		{"S3-compatible 507", s3Err(507, "SomethingElse"), true},
		{"MinIO storage full", s3Err(507, "XMinioStorageFull"), true},
		{"Ceph quota", s3Err(403, "QuotaExceeded"), true},
		{"S3 500", s3Err(500, "InternalError"), false},
		{"S3 too large", s3Err(400, "EntityTooLarge"), false},
		{"permission", &fs.PathError{Op: "open", Path: "x", Err: syscall.EACCES}, false},
		{"canceled", context.Canceled, false},
		{"nil", nil, false},
	}
	for _, c := range cases {
		if got := Is(c.err); got != c.want {
			t.Errorf("%s: Is(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
