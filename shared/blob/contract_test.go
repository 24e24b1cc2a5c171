package blob_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/blob/blobtest"
	"github.com/otakit/ota/shared/urlsign"
)

func TestLocalContract(t *testing.T) {
	blobtest.Run(t, blobtest.Caps{KeepsContentType: false}, newLocalWithUploads)
}

// newLocalWithUploads is a Local whose presigned uploads reach it: a server at its
// base URL receives them the way otad's upload route does (without the release
// checks otad adds on top).
func newLocalWithUploads(t *testing.T) blob.Store {
	signer, err := urlsign.New(bytes.Repeat([]byte("s"), 32))
	if err != nil {
		t.Fatal(err)
	}
	var l *blob.Local
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			http.Error(w, "PUT only", http.StatusMethodNotAllowed)
			return
		}
		_, err := l.ReceiveUpload(r.Context(), r.URL.Path, r.URL.Query(), r.Body)
		switch {
		case errors.Is(err, blob.ErrChecksum):
			http.Error(w, err.Error(), http.StatusBadRequest)
		case err != nil:
			http.Error(w, err.Error(), http.StatusForbidden)
		}
	}))
	t.Cleanup(srv.Close)
	if l, err = blob.NewLocal(t.TempDir(), signer, srv.URL); err != nil {
		t.Fatal(err)
	}
	return l
}
