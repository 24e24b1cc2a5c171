package sign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
)

func TestParsePublicPEM(t *testing.T) {
	k := key(t)
	spki, err := MarshalSPKIPublicPEM(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := MarshalPKCS1PublicPEM(&k.PublicKey)
	spkiDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	bare := base64.StdEncoding.EncodeToString(spkiDER)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)

	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"SPKI PEM", string(spki), false},
		{"PKCS#1 PEM", string(pkcs1), false},
		{"bare base64 SPKI", bare, false},
		{"bare base64 wrapped in lines", wrap(bare, 64), false},
		{"bare base64 PKCS#1", base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(&k.PublicKey)), false},
		{"bare base64 without padding", strings.TrimRight(bare, "="), false},
		{"PEM with escaped newlines", strings.ReplaceAll(string(spki), "\n", `\n`), false},
		{"PEM after other text", "comment\n" + string(pkcs1), false},
		{"EC key", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER})), true},
		{"certificate block only", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: spkiDER})), true},
		{"garbage", "not a key", true},
		{"empty", "", true},
	}
	for _, tt := range tests {
		pub, err := ParsePublicPEM([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
			continue
		}
		if err == nil && !pub.Equal(&k.PublicKey) {
			t.Errorf("%s: parsed a different key", tt.name)
		}
	}
}

func TestParsePrivatePEM(t *testing.T) {
	k := key(t)
	pkcs8, err := MarshalPKCS8PrivatePEM(k)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(pkcs8), "-----BEGIN PRIVATE KEY-----\n") {
		t.Errorf("PKCS#8 PEM starts %q", string(pkcs8)[:30])
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{"PKCS#8", pkcs8, false},
		{"PKCS#1 (as @capgo/cli writes)", pkcs1, false},
		{"public key block first", append(MarshalPKCS1PublicPEM(&k.PublicKey), pkcs1...), false},
		{"encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), true},
		{"legacy encrypted", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}), true},
		{"EC key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), true},
		{"no PEM", []byte("MIIE"), true},
	}
	for _, tt := range tests {
		got, err := ParsePrivatePEM(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
			continue
		}
		if err == nil && !got.Equal(k) {
			t.Errorf("%s: parsed a different key", tt.name)
		}
	}
}

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	b.WriteString(s + "\n")
	return b.String()
}
