package sign

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
)

// SignEd25519 signs digest (the message, typically a SHA-256) and returns
// standard base64. Like ed25519.Sign it panics if priv is malformed.
func SignEd25519(priv ed25519.PrivateKey, digest []byte) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(priv, digest))
}

// VerifyEd25519 checks a base64 Ed25519 signature of digest.
func VerifyEd25519(pub ed25519.PublicKey, digest []byte, sigB64 string) error {
	if len(pub) != ed25519.PublicKeySize { // ed25519.Verify would panic
		return fmt.Errorf("verify ed25519: public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	sig, err := decodeSig(sigB64)
	if err != nil {
		return fmt.Errorf("verify ed25519: %w", err)
	}
	if !ed25519.Verify(pub, digest, sig) {
		return errors.New("verify ed25519: signature does not match")
	}
	return nil
}
