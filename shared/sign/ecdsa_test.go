package sign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
)

func p256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := GenerateP256()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestP256SignVerify(t *testing.T) {
	k := p256(t)
	msg := []byte(`{"v":1,"version":"2.1.0"}`)
	sig, err := SignP256(k, msg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) != 64 {
		t.Fatalf("want 64 bytes of standard base64 (r||s), got %d: %v", len(raw), err)
	}
	// Independent check: the halves are r and s of a stdlib-valid signature.
	h := sha256.Sum256(msg)
	if !ecdsa.Verify(&k.PublicKey, h[:], new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])) {
		t.Fatal("stdlib rejects our r||s halves")
	}
	der, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	other := p256(t)
	tests := []struct {
		name    string
		pub     *ecdsa.PublicKey
		msg     []byte
		sig     string
		wantErr bool
	}{
		{"ours", &k.PublicKey, msg, sig, false},
		{"other message", &k.PublicKey, []byte(`{"v":1,"version":"2.1.1"}`), sig, true},
		{"other key", &other.PublicKey, msg, sig, true},
		{"DER is not r||s", &k.PublicKey, msg, base64.StdEncoding.EncodeToString(der), true},
		{"not base64", &k.PublicKey, msg, "%%%", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := VerifyP256(tc.pub, tc.msg, tc.sig); (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}

func TestP256Keys(t *testing.T) {
	k := p256(t)
	pkcs8, err := MarshalECPrivatePEM(k)
	if err != nil {
		t.Fatal(err)
	}
	sec1der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	// openssl ecparam -genkey writes an EC PARAMETERS block first.
	sec1 := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1der})...)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalPKCS8PrivateKey(p384)
	rsaPEM, err := MarshalPKCS8PrivatePEM(key(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pem     []byte
		wantErr bool
	}{
		{"pkcs8", pkcs8, false},
		{"pkcs8 with escaped newlines", []byte(strings.ReplaceAll(string(pkcs8), "\n", `\n`)), false},
		{"sec1 after parameters", sec1, false},
		{"p-384 refused", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384der}), true},
		{"rsa refused", rsaPEM, true},
		{"encrypted refused", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), true},
		{"no pem", []byte("nothing"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseP256PrivatePEM(tc.pem)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && !got.Equal(k) {
				t.Fatal("parsed another key")
			}
		})
	}

	spki, err := MarshalECPublicSPKI(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]string{
		"bare base64": base64.StdEncoding.EncodeToString(spki),
		"pem":         string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})),
	} {
		pub, err := ParseP256PublicKey([]byte(in))
		if err != nil || !pub.Equal(&k.PublicKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
	rsaSPKI, _ := x509.MarshalPKIXPublicKey(&key(t).PublicKey)
	if _, err := ParseP256PublicKey([]byte(base64.StdEncoding.EncodeToString(rsaSPKI))); err == nil {
		t.Error("an RSA public key parsed as P-256")
	}
}

func TestSeedStatement(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		name, version, sha, minNative string
		want                          string
		wantErr                       bool
	}{
		{"with floor", "2.1.0", sum, "1.5.0", `{"v":1,"version":"2.1.0","sha256":"` + sum + `","minNativeVersion":"1.5.0"}`, false},
		{"no floor is 0.0.0", "2.1.0-rc.1", sum, "", `{"v":1,"version":"2.1.0-rc.1","sha256":"` + sum + `","minNativeVersion":"0.0.0"}`, false},
		{"no HTML escaping", "2.1.0+a&b", sum, "", `{"v":1,"version":"2.1.0+a&b","sha256":"` + sum + `","minNativeVersion":"0.0.0"}`, false},
		{"upper-case digest", "2.1.0", strings.ToUpper(sum), "", "", true},
		{"no version", "", sum, "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SeedStatementText(tc.version, tc.sha, tc.minNative)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}

	k := p256(t)
	stmt, sig, err := SignSeedStatement(k, "2.1.0", sum, "1.5.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyP256(&k.PublicKey, []byte(stmt), sig); err != nil {
		t.Fatal(err)
	}
	var s SeedStatement
	if err := json.Unmarshal([]byte(stmt), &s); err != nil || s.V != 1 || s.Version != "2.1.0" || s.SHA256 != sum || s.MinNativeVersion != "1.5.0" {
		t.Fatalf("%+v %v", s, err)
	}
}
