package sign

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"testing"
)

func TestPSS(t *testing.T) {
	k := key(t)
	digest := digestOf("zip bytes")
	sig, err := SignPSS(k, digest)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(sig)
	// Independent check with the exact options native-update uses.
	if err := rsa.VerifyPSS(&k.PublicKey, crypto.SHA256, digest, raw, &rsa.PSSOptions{SaltLength: 32}); err != nil {
		t.Errorf("stdlib rejects our PSS signature: %v", err)
	}

	maxSalt, err := rsa.SignPSS(rand.Reader, k, crypto.SHA256, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := GenerateRSA(1024)
	tests := []struct {
		name    string
		pub     *rsa.PublicKey
		digest  []byte
		sig     string
		wantErr bool
	}{
		{"ours", &k.PublicKey, digest, sig, false},
		{"ours with spaces", &k.PublicKey, digest, " " + sig + "\n", false},
		{"max salt is refused", &k.PublicKey, digest, base64.StdEncoding.EncodeToString(maxSalt), true},
		{"other digest", &k.PublicKey, digestOf("other"), sig, true},
		{"other key", &other.PublicKey, digest, sig, true},
		{"truncated", &k.PublicKey, digest, sig[:len(sig)-4], true},
		{"empty", &k.PublicKey, digest, "", true},
	}
	for _, tt := range tests {
		if err := VerifyPSS(tt.pub, tt.digest, tt.sig); (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
	if _, err := SignPSS(k, []byte("not a digest")); err == nil {
		t.Error("SignPSS accepted a non-SHA-256 digest")
	}
}

func TestPKCS1(t *testing.T) {
	k := key(t)
	digest := digestOf("zip bytes")
	sig, err := SignPKCS1(k, digest)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(sig)
	if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, digest, raw); err != nil {
		t.Errorf("stdlib rejects our PKCS#1 signature: %v", err)
	}
	again, _ := SignPKCS1(k, digest)
	pss, _ := SignPSS(k, digest)
	tests := []struct {
		name    string
		digest  []byte
		sig     string
		wantErr bool
	}{
		{"ours", digest, sig, false},
		{"deterministic", digest, again, false},
		{"other digest", digestOf("other"), sig, true},
		{"a PSS signature", digest, pss, true},
		{"not base64", digest, "!!!", true},
	}
	for _, tt := range tests {
		if err := VerifyPKCS1(&k.PublicKey, tt.digest, tt.sig); (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
	if sig != again {
		t.Error("PKCS#1 v1.5 signatures should be deterministic")
	}
	if err := VerifyPSS(&k.PublicKey, digest, sig); err == nil {
		t.Error("a PKCS#1 signature verified as PSS")
	}
}

func TestEd25519(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	digest := digestOf("statement")
	sig := SignEd25519(priv, digest)
	tests := []struct {
		name    string
		pub     ed25519.PublicKey
		digest  []byte
		sig     string
		wantErr bool
	}{
		{"ours", pub, digest, sig, false},
		{"other key", otherPub, digest, sig, true},
		{"other digest", pub, digestOf("x"), sig, true},
		{"short key", pub[:10], digest, sig, true},
		{"not base64", pub, digest, "%%", true},
	}
	for _, tt := range tests {
		if err := VerifyEd25519(tt.pub, tt.digest, tt.sig); (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}
