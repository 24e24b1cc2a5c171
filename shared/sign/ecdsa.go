package sign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// p256Size is the byte length of each half (r, s) of an IEEE P1363 P-256 signature.
const p256Size = 32

// GenerateP256 makes a new ECDSA P-256 key (the seed app's statement key).
func GenerateP256() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ecdsa p-256: %w", err)
	}
	return key, nil
}

// MarshalECPrivatePEM encodes priv as a PKCS#8 "PRIVATE KEY" PEM block, the form
// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes.
func MarshalECPrivatePEM(priv *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalECPublicSPKI returns pub as DER SubjectPublicKeyInfo: WebCrypto's
// importKey("spki", ...) reads it, and the seed app builds it in as base64.
func MarshalECPublicSPKI(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return der, nil
}

// ParseP256PrivatePEM reads an ECDSA P-256 private key from the first private key
// PEM block in data: PKCS#8 ("PRIVATE KEY", openssl genpkey) or SEC 1 ("EC PRIVATE
// KEY", openssl ecparam -genkey; an "EC PARAMETERS" block before it is skipped).
// Encrypted keys and other curves are refused.
func ParseP256PrivatePEM(data []byte) (*ecdsa.PrivateKey, error) {
	block, err := findBlock(unescapeNewlines(data), "PRIVATE KEY")
	if err != nil {
		return nil, fmt.Errorf("parse ecdsa private key: %w", err)
	}
	if strings.Contains(block.Type, "ENCRYPTED") || block.Headers["Proc-Type"] != "" {
		return nil, errors.New("parse ecdsa private key: encrypted keys are not supported")
	}
	var key *ecdsa.PrivateKey
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		key = k
	} else {
		parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse ecdsa private key: neither SEC 1 nor PKCS#8: %w", err)
		}
		k, ok := parsed.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("parse ecdsa private key: %T is not an ECDSA key", parsed)
		}
		key = k
	}
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("parse ecdsa private key: curve %s, want P-256", key.Curve.Params().Name)
	}
	return key, nil
}

// ParseP256PublicKey reads an ECDSA P-256 public key given as a "PUBLIC KEY" PEM
// block or as bare base64 of its SPKI DER (how the seed app holds it).
func ParseP256PublicKey(data []byte) (*ecdsa.PublicKey, error) {
	data = unescapeNewlines(data)
	var der []byte
	if strings.Contains(string(data), "-----BEGIN") {
		block, err := findBlock(data, "PUBLIC KEY")
		if err != nil {
			return nil, fmt.Errorf("parse ecdsa public key: %w", err)
		}
		der = block.Bytes
	} else {
		var err error
		if der, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(data)), "")); err != nil {
			return nil, fmt.Errorf("parse ecdsa public key: neither PEM nor base64: %w", err)
		}
	}
	parsed, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse ecdsa public key: %w", err)
	}
	key, ok := parsed.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("parse ecdsa public key: not a P-256 key")
	}
	return key, nil
}

// SignP256 signs msg with ECDSA P-256 over SHA-256 and returns standard base64 of
// the IEEE P1363 form r||s (64 bytes), the form WebCrypto's verify takes. Go makes
// ASN.1 DER, which WebCrypto rejects, so the halves are re-packed.
func SignP256(priv *ecdsa.PrivateKey, msg []byte) (string, error) {
	h := sha256.Sum256(msg)
	der, err := ecdsa.SignASN1(rand.Reader, priv, h[:])
	if err != nil {
		return "", fmt.Errorf("sign ecdsa: %w", err)
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		return "", fmt.Errorf("sign ecdsa: %w", err)
	}
	raw := make([]byte, 2*p256Size)
	rs.R.FillBytes(raw[:p256Size])
	rs.S.FillBytes(raw[p256Size:])
	return base64.StdEncoding.EncodeToString(raw), nil
}

// VerifyP256 checks a base64 IEEE P1363 (r||s) ECDSA P-256 SHA-256 signature of
// msg; a DER signature fails here as it does in WebCrypto.
func VerifyP256(pub *ecdsa.PublicKey, msg []byte, sigB64 string) error {
	raw, err := decodeSig(sigB64)
	if err != nil {
		return fmt.Errorf("verify ecdsa: %w", err)
	}
	if len(raw) != 2*p256Size {
		return fmt.Errorf("verify ecdsa: signature has %d bytes, want %d (r||s)", len(raw), 2*p256Size)
	}
	h := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(raw[:p256Size])
	s := new(big.Int).SetBytes(raw[p256Size:])
	if !ecdsa.Verify(pub, h[:], r, s) {
		return errors.New("verify ecdsa: signature does not match")
	}
	return nil
}
