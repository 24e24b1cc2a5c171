package sign

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// pssSaltLen is what native-update 1.x devices require. Go's default (nil
// options) uses the maximum salt, which those devices reject.
const pssSaltLen = 32

// SignPSS signs a SHA-256 digest with RSASSA-PSS (MGF1-SHA-256, salt length
// 32) and returns standard base64, as native-update 1.x verifies.
func SignPSS(priv *rsa.PrivateKey, digest []byte) (string, error) {
	if err := checkDigest(digest); err != nil {
		return "", fmt.Errorf("sign pss: %w", err)
	}
	sig, err := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, digest, &rsa.PSSOptions{SaltLength: pssSaltLen})
	if err != nil {
		return "", fmt.Errorf("sign pss: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// VerifyPSS checks a base64 RSASSA-PSS SHA-256 signature whose salt is
// exactly 32 bytes, so it fails where native-update devices would.
func VerifyPSS(pub *rsa.PublicKey, digest []byte, sigB64 string) error {
	sig, err := decodeSig(sigB64)
	if err != nil {
		return fmt.Errorf("verify pss: %w", err)
	}
	if err := rsa.VerifyPSS(pub, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: pssSaltLen}); err != nil {
		return fmt.Errorf("verify pss: %w", err)
	}
	return nil
}

// SignPKCS1 signs a SHA-256 digest with RSASSA-PKCS1-v1_5 and returns
// standard base64 (capacitor-native-update 2.0, Expo).
func SignPKCS1(priv *rsa.PrivateKey, digest []byte) (string, error) {
	if err := checkDigest(digest); err != nil {
		return "", fmt.Errorf("sign pkcs1: %w", err)
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, digest)
	if err != nil {
		return "", fmt.Errorf("sign pkcs1: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// VerifyPKCS1 checks a base64 RSASSA-PKCS1-v1_5 SHA-256 signature.
func VerifyPKCS1(pub *rsa.PublicKey, digest []byte, sigB64 string) error {
	sig, err := decodeSig(sigB64)
	if err != nil {
		return fmt.Errorf("verify pkcs1: %w", err)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig); err != nil {
		return fmt.Errorf("verify pkcs1: %w", err)
	}
	return nil
}

func checkDigest(digest []byte) error {
	if len(digest) != sha256.Size {
		return fmt.Errorf("digest has %d bytes, want a %d-byte SHA-256", len(digest), sha256.Size)
	}
	return nil
}

// decodeSig reads a standard base64 signature, ignoring surrounding space.
func decodeSig(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty signature")
	}
	sig, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("signature is not standard base64: %w", err)
	}
	return sig, nil
}
