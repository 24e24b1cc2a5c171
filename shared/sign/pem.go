package sign

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// GenerateRSA makes a new RSA key; clients use 2048 bits (Capgo requires it).
func GenerateRSA(bits int) (*rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, fmt.Errorf("generate rsa-%d: %w", bits, err)
	}
	return key, nil
}

// MarshalPKCS8PrivatePEM encodes priv as a "PRIVATE KEY" PEM block.
func MarshalPKCS8PrivatePEM(priv *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalSPKIPublicPEM encodes pub as a "PUBLIC KEY" (SubjectPublicKeyInfo)
// PEM block, the form native-update's publicKey takes.
func MarshalSPKIPublicPEM(pub *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// MarshalPKCS1PublicPEM encodes pub as an "RSA PUBLIC KEY" (PKCS#1) PEM
// block, the form Capgo's publicKey takes and CapgoKeyID reads.
func MarshalPKCS1PublicPEM(pub *rsa.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)})
}

// ParsePrivatePEM reads an RSA private key from the first private key PEM
// block in data, PKCS#1 ("RSA PRIVATE KEY", as @capgo/cli writes) or PKCS#8
// ("PRIVATE KEY"). Encrypted keys are refused.
func ParsePrivatePEM(data []byte) (*rsa.PrivateKey, error) {
	block, err := findBlock(unescapeNewlines(data), "PRIVATE KEY")
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	if strings.Contains(block.Type, "ENCRYPTED") || block.Headers["Proc-Type"] != "" {
		return nil, errors.New("parse private key: encrypted keys are not supported")
	}
	if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return key, nil
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: neither PKCS#1 nor PKCS#8: %w", err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("parse private key: %T is not an RSA key", parsed)
	}
	return key, nil
}

// ParsePublicPEM reads an RSA public key given as a "PUBLIC KEY" (SPKI) or
// "RSA PUBLIC KEY" (PKCS#1) PEM block, or as bare base64 of either DER form
// (native-update accepts a bare SPKI body).
func ParsePublicPEM(data []byte) (*rsa.PublicKey, error) {
	data = unescapeNewlines(data)
	var der []byte
	if bytes.Contains(data, []byte("-----BEGIN")) {
		block, err := findBlock(data, "PUBLIC KEY")
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		der = block.Bytes
	} else {
		body := strings.Join(strings.Fields(string(data)), "")
		var err error
		if der, err = base64.StdEncoding.DecodeString(body); err != nil {
			if der, err = base64.RawStdEncoding.DecodeString(body); err != nil {
				return nil, fmt.Errorf("parse public key: neither PEM nor base64: %w", err)
			}
		}
	}
	return parsePublicDER(der)
}

func parsePublicDER(der []byte) (*rsa.PublicKey, error) {
	if key, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return key, nil
	}
	parsed, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse public key: neither SPKI nor PKCS#1: %w", err)
	}
	key, ok := parsed.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("parse public key: %T is not an RSA key", parsed)
	}
	return key, nil
}

// findBlock returns the first PEM block whose type ends with suffix.
func findBlock(data []byte, suffix string) (*pem.Block, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("no %s PEM block", suffix)
		}
		if strings.HasSuffix(block.Type, suffix) {
			return block, nil
		}
	}
}

// unescapeNewlines turns literal "\n" into newlines: keys pasted through
// JSON or environment variables often arrive that way, and PEM never
// contains a backslash.
func unescapeNewlines(data []byte) []byte {
	return bytes.ReplaceAll(data, []byte(`\n`), []byte("\n"))
}
