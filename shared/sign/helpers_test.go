package sign

import (
	"crypto/rsa"
	"crypto/sha256"
	"sync"
	"testing"
)

// testKey is generated once per run: RSA-2048 generation is slow.
var testKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return GenerateRSA(2048) })

func key(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := testKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func digestOf(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}
