package sign

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// Capgo v2 encryption (docs/protocols.md, Capgo). P(x) is the
// RSA private-key operation with PKCS#1 v1.5 type-1 padding and no
// DigestInfo, i.e. a raw-data signature; devices undo it with the public key.
const (
	capgoKeyBytes = 256 // devices require RSA-2048
	capgoAESBytes = 16  // AES-128
	capgoKeyIDLen = 20
)

// capgoP is Capgo's P(x); deterministic for a given key and x.
func capgoP(priv *rsa.PrivateKey, x []byte) ([]byte, error) {
	return rsa.SignPKCS1v15(nil, priv, crypto.Hash(0), x)
}

var pemArmour = regexp.MustCompile(`-----[^-]*-----`)

// CapgoKeyID returns the key_id Capgo devices send: the first 20
// characters of the public key's base64 body, armour and whitespace
// removed. Every RSA-2048 PKCS#1 key starts "MIIBCgKCAQEA", so only about
// 8 characters tell keys apart: it detects mismatches, it is not security.
func CapgoKeyID(publicKeyPEM string) string {
	body := pemArmour.ReplaceAllString(publicKeyPEM, "")
	body = strings.Join(strings.Fields(body), "")
	if len(body) > capgoKeyIDLen {
		body = body[:capgoKeyIDLen]
	}
	return body
}

// CapgoEncrypt encrypts a zip as @capgo/cli does: AES-128-CBC with PKCS#7
// padding under a random key and IV. sessionKey is base64(IV) ":"
// base64(P(aesKey)); encChecksum is hex(P(sha256(zip))), 512 lowercase hex
// characters, the "V3" form current plugins read.
func CapgoEncrypt(priv *rsa.PrivateKey, zip []byte) (encrypted []byte, sessionKey string, encChecksum string, err error) {
	if priv.Size() != capgoKeyBytes {
		return nil, "", "", fmt.Errorf("capgo encrypt: key has %d bits, devices need 2048", priv.N.BitLen())
	}
	key := make([]byte, capgoAESBytes)
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(key); err != nil {
		return nil, "", "", fmt.Errorf("capgo encrypt: random key: %w", err)
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, "", "", fmt.Errorf("capgo encrypt: random iv: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, "", "", fmt.Errorf("capgo encrypt: %w", err)
	}
	encrypted = pkcs7Pad(zip, aes.BlockSize)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(encrypted, encrypted)

	wrappedKey, err := capgoP(priv, key)
	if err != nil {
		return nil, "", "", fmt.Errorf("capgo encrypt: wrap key: %w", err)
	}
	sum := sha256.Sum256(zip)
	checksum, err := capgoP(priv, sum[:])
	if err != nil {
		return nil, "", "", fmt.Errorf("capgo encrypt: checksum: %w", err)
	}
	sessionKey = base64.StdEncoding.EncodeToString(iv) + ":" + base64.StdEncoding.EncodeToString(wrappedKey)
	return encrypted, sessionKey, hex.EncodeToString(checksum), nil
}

var hexOnly = regexp.MustCompile(`^[0-9a-fA-F]+$`)

// CapgoVerifyChecksum checks an encrypted checksum against the SHA-256 of
// the plain zip the way devices do: hex if it is all hex digits, else
// base64; it must decode to 256 bytes.
func CapgoVerifyChecksum(pub *rsa.PublicKey, plainZipSHA256 []byte, encChecksum string) error {
	var sig []byte
	var err error
	if hexOnly.MatchString(encChecksum) {
		sig, err = hex.DecodeString(encChecksum)
	} else {
		sig, err = base64.StdEncoding.DecodeString(encChecksum)
	}
	if err != nil {
		return fmt.Errorf("capgo checksum: decode: %w", err)
	}
	if len(sig) != capgoKeyBytes {
		return fmt.Errorf("capgo checksum: %d bytes, want %d", len(sig), capgoKeyBytes)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.Hash(0), plainZipSHA256, sig); err != nil {
		return fmt.Errorf("capgo checksum: %w", err)
	}
	return nil
}

// CapgoDecrypt does what a device does with an encrypted bundle: recover the
// AES key from sessionKey with the public key, decrypt and unpad.
func CapgoDecrypt(pub *rsa.PublicKey, sessionKey string, enc []byte) ([]byte, error) {
	ivB64, keyB64, ok := strings.Cut(sessionKey, ":")
	if !ok {
		return nil, errors.New("capgo decrypt: session key lacks ':'")
	}
	iv, err := base64.StdEncoding.DecodeString(ivB64)
	if err != nil || len(iv) != aes.BlockSize {
		return nil, fmt.Errorf("capgo decrypt: iv must be %d base64 bytes", aes.BlockSize)
	}
	wrapped, err := base64.StdEncoding.DecodeString(keyB64)
	if err != nil {
		return nil, fmt.Errorf("capgo decrypt: wrapped key: %w", err)
	}
	key, err := publicRecover(pub, wrapped)
	if err != nil {
		return nil, fmt.Errorf("capgo decrypt: wrapped key: %w", err)
	}
	if len(key) != capgoAESBytes {
		return nil, fmt.Errorf("capgo decrypt: aes key has %d bytes, want %d", len(key), capgoAESBytes)
	}
	if len(enc) == 0 || len(enc)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("capgo decrypt: %d bytes is not a whole number of blocks", len(enc))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("capgo decrypt: %w", err)
	}
	plain := make([]byte, len(enc))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, enc)
	return pkcs7Unpad(plain, aes.BlockSize)
}

// publicRecover inverts P: it computes s^e mod n and strips the type-1
// padding 00 01 FF..FF 00, returning x.
func publicRecover(pub *rsa.PublicKey, sig []byte) ([]byte, error) {
	k := pub.Size()
	if len(sig) != k {
		return nil, fmt.Errorf("%d bytes, want %d", len(sig), k)
	}
	s := new(big.Int).SetBytes(sig)
	if s.Cmp(pub.N) >= 0 {
		return nil, errors.New("value out of range for the key")
	}
	em := new(big.Int).Exp(s, big.NewInt(int64(pub.E)), pub.N).FillBytes(make([]byte, k))
	i := 2
	for i < k && em[i] == 0xff {
		i++
	}
	if em[0] != 0 || em[1] != 1 || i-2 < 8 || i == k || em[i] != 0 {
		return nil, errors.New("not a type-1 padded block for this key")
	}
	return em[i+1:], nil
}

// pkcs7Pad returns a padded copy of b.
func pkcs7Pad(b []byte, size int) []byte {
	n := size - len(b)%size
	out := make([]byte, len(b), len(b)+n)
	copy(out, b)
	return append(out, bytes.Repeat([]byte{byte(n)}, n)...)
}

func pkcs7Unpad(b []byte, size int) ([]byte, error) {
	if len(b) == 0 || len(b)%size != 0 {
		return nil, errors.New("capgo decrypt: bad padding")
	}
	n := int(b[len(b)-1])
	if n == 0 || n > size || !bytes.Equal(b[len(b)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		return nil, errors.New("capgo decrypt: bad padding (wrong key?)")
	}
	return b[:len(b)-n], nil
}
