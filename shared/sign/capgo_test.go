package sign

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

func TestCapgoKeyID(t *testing.T) {
	k := key(t)
	pkcs1 := string(MarshalPKCS1PublicPEM(&k.PublicKey))
	body := strings.Join(strings.Split(strings.TrimSpace(pkcs1), "\n")[1:], "")
	tests := []struct {
		name, pem, want string
	}{
		{"fixed text", "-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEAvXyZ0123\n4567abcd\n-----END RSA PUBLIC KEY-----\n", "MIIBCgKCAQEAvXyZ0123"},
		{"CRLF", "-----BEGIN RSA PUBLIC KEY-----\r\nMIIBCgKCAQEA\r\nvXyZ0123456\r\n-----END RSA PUBLIC KEY-----\r\n", "MIIBCgKCAQEAvXyZ0123"},
		{"single line", "-----BEGIN RSA PUBLIC KEY-----MIIBCgKCAQEAvXyZ0123456-----END RSA PUBLIC KEY-----", "MIIBCgKCAQEAvXyZ0123"},
		{"short", "-----BEGIN RSA PUBLIC KEY-----\nMIIB\n-----END RSA PUBLIC KEY-----", "MIIB"},
		{"generated PKCS#1 key", pkcs1, body[:20]},
	}
	for _, tt := range tests {
		if got := CapgoKeyID(tt.pem); got != tt.want {
			t.Errorf("%s: CapgoKeyID = %q, want %q", tt.name, got, tt.want)
		}
	}
	if id := CapgoKeyID(pkcs1); !strings.HasPrefix(id, "MIIBCgKCAQEA") || len(id) != 20 {
		t.Errorf("RSA-2048 PKCS#1 key id %q should be 20 chars starting MIIBCgKCAQEA", id)
	}
}

func TestCapgoRoundTrip(t *testing.T) {
	k := key(t)
	pub := &k.PublicKey
	for _, size := range []int{0, 1, 15, 16, 17, 100000} {
		zip := bytes.Repeat([]byte{'z'}, size)
		enc, sessionKey, checksum, err := CapgoEncrypt(k, zip)
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) != (size/16+1)*16 {
			t.Errorf("size %d: %d encrypted bytes", size, len(enc))
		}
		iv, wrapped, _ := strings.Cut(sessionKey, ":")
		if len(iv) != 24 || len(wrapped) != 344 {
			t.Errorf("session key parts %d:%d chars, want 24:344", len(iv), len(wrapped))
		}
		if !regexp.MustCompile(`^[0-9a-f]{512}$`).MatchString(checksum) {
			t.Errorf("checksum %q is not 512 lowercase hex", checksum)
		}
		plain, err := CapgoDecrypt(pub, sessionKey, enc)
		if err != nil || !bytes.Equal(plain, zip) {
			t.Fatalf("size %d: decrypt = %d bytes, %v", size, len(plain), err)
		}
		sum := sha256.Sum256(plain)
		if err := CapgoVerifyChecksum(pub, sum[:], checksum); err != nil {
			t.Errorf("size %d: checksum: %v", size, err)
		}
	}
}

func TestCapgoChecksum(t *testing.T) {
	k := key(t)
	zip := []byte("PK\x03\x04 pretend zip")
	enc1, sk1, checksum, err := CapgoEncrypt(k, zip)
	if err != nil {
		t.Fatal(err)
	}
	enc2, sk2, checksum2, _ := CapgoEncrypt(k, zip)
	if checksum != checksum2 {
		t.Error("P() is deterministic, so the checksum should be too")
	}
	if bytes.Equal(enc1, enc2) || sk1 == sk2 {
		t.Error("key and IV should be random per encryption")
	}
	// Independent check of P(sha256(zip)) with the device's primitive.
	sum := sha256.Sum256(zip)
	raw, _ := hex.DecodeString(checksum)
	if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.Hash(0), sum[:], raw); err != nil {
		t.Errorf("stdlib rejects the checksum: %v", err)
	}
	other, _ := GenerateRSA(2048)
	tests := []struct {
		name     string
		pub      *rsa.PublicKey
		sum      []byte
		checksum string
		wantErr  bool
	}{
		{"hex (V3)", &k.PublicKey, sum[:], checksum, false},
		{"upper-case hex", &k.PublicKey, sum[:], strings.ToUpper(checksum), false},
		{"base64 (V2)", &k.PublicKey, sum[:], base64.StdEncoding.EncodeToString(raw), false},
		{"plain sha256 hex", &k.PublicKey, sum[:], hex.EncodeToString(sum[:]), true},
		{"other zip", &k.PublicKey, digestOf("other"), checksum, true},
		{"other key", &other.PublicKey, sum[:], checksum, true},
		{"not hex nor base64", &k.PublicKey, sum[:], "zz!!", true},
	}
	for _, tt := range tests {
		if err := CapgoVerifyChecksum(tt.pub, tt.sum, tt.checksum); (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestCapgoDecryptRejects(t *testing.T) {
	k := key(t)
	enc, sessionKey, _, err := CapgoEncrypt(k, []byte("zip"))
	if err != nil {
		t.Fatal(err)
	}
	iv, wrapped, _ := strings.Cut(sessionKey, ":")
	other, _ := GenerateRSA(2048)
	tests := []struct {
		name       string
		pub        *rsa.PublicKey
		sessionKey string
		enc        []byte
	}{
		{"other key", &other.PublicKey, sessionKey, enc},
		{"no colon", &k.PublicKey, iv + wrapped, enc},
		{"short iv", &k.PublicKey, "AAAA:" + wrapped, enc},
		{"wrapped key not base64", &k.PublicKey, iv + ":%%", enc},
		{"wrapped key too short", &k.PublicKey, iv + ":AAAA", enc},
		{"partial block", &k.PublicKey, sessionKey, enc[:len(enc)-1]},
		{"empty", &k.PublicKey, sessionKey, nil},
	}
	for _, tt := range tests {
		if _, err := CapgoDecrypt(tt.pub, tt.sessionKey, tt.enc); err == nil {
			t.Errorf("%s: decrypt succeeded", tt.name)
		}
	}
	small, _ := GenerateRSA(1024)
	if _, _, _, err := CapgoEncrypt(small, []byte("zip")); err == nil {
		t.Error("CapgoEncrypt accepted an RSA-1024 key")
	}
}

func TestPKCS7(t *testing.T) {
	tests := []struct {
		in      []byte
		wantErr bool
	}{
		{bytes.Repeat([]byte{16}, 16), false},
		{append(bytes.Repeat([]byte{'a'}, 15), 1), false},
		{append(bytes.Repeat([]byte{'a'}, 15), 0), true},
		{append(bytes.Repeat([]byte{'a'}, 15), 17), true},
		{append(bytes.Repeat([]byte{'a'}, 14), 1, 2), true},
		{[]byte{1}, true},
	}
	for _, tt := range tests {
		if _, err := pkcs7Unpad(tt.in, 16); (err != nil) != tt.wantErr {
			t.Errorf("pkcs7Unpad(%x): err = %v, want error %v", tt.in, err, tt.wantErr)
		}
	}
}
