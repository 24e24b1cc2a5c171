package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/spf13/cobra"
)

// Names of the files `ota signing-key create` writes.
const (
	signingPrivateFile   = "signing_private.pem"
	signingPublicFile    = "signing_public.pem"
	statementPrivateFile = "statement_private.pem"
	statementPublicFile  = "statement_public.pem"
)

// Key types of `ota signing-key create --type`.
const (
	keyTypeRSA   = "rsa"
	keyTypeP256  = "ecdsa-p256"
	keyTypeUsage = "rsa (native-update bundle signatures) or ecdsa-p256 (the seed app's signed statement)"
)

func newSigningKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "signing-key",
		Short: "Make the key pairs that sign bundles (RSA for native-update, ECDSA P-256 for the seed app)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newSigningKeyCreateCmd(g))
	return cmd
}

type signingKeyResult struct {
	Type       string `json:"type"`
	PrivateKey string `json:"private_key"` // file path
	PublicKey  string `json:"public_key"`  // file path
	PublicPEM  string `json:"public_pem"`  // native-update: what goes into liveUpdate.security.publicKey
	// PublicSPKI is the public key as one line of base64 DER (SPKI): the form the
	// seed app builds in and imports with WebCrypto. Only for ecdsa-p256.
	PublicSPKI string `json:"public_spki_base64,omitempty"`
}

func newSigningKeyCreateCmd(g *globals) *cobra.Command {
	var out, typ string
	var force bool
	c := &cobra.Command{
		Use:   "create --out DIR [--type rsa|ecdsa-p256]",
		Short: "Write a key pair into DIR: RSA signing_*.pem, or ECDSA P-256 statement_*.pem",
		Long: "Create a key pair; the private key is PKCS#8 PEM (mode 0600) and stays on the machine that\n" +
			"publishes.\n\n" +
			"--type rsa (default): RSA-2048 for native-update bundle signatures. Pass signing_private.pem\n" +
			"to ota release --sign-key; put the public key in the app's native-update config as\n" +
			"liveUpdate.security.publicKey, with liveUpdate.security.enableSignatureValidation: true.\n\n" +
			"--type ecdsa-p256: the seed app's statement key. Pass statement_private.pem to ota release\n" +
			"--seed-statement-key; build the printed one-line base64 public key (SPKI) into the app's\n" +
			"list of trusted update keys. The app installs only bundles whose statement it verifies.",
		Example: "  ota signing-key create --out ./keys\n" +
			"  ota release ./www --app com.example.app --version 1.0.1 --sign-key ./keys/signing_private.pem\n" +
			"  ota signing-key create --out ./keys --type ecdsa-p256\n" +
			"  ota release ./www --app com.example.app --version 1.0.1 --seed-statement-key ./keys/statement_private.pem",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required (the folder to write the key pair into)")
			}
			res, err := writeSigningKey(out, typ, force)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSONOut(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			if res.Type == keyTypeP256 {
				fmt.Fprintf(w, "wrote %s (private, keep it secret; used by ota release --seed-statement-key)\n", res.PrivateKey)
				fmt.Fprintf(w, "wrote %s (public)\n\n", res.PublicKey)
				fmt.Fprintf(w, "Build this public key (base64 SPKI) into the seed app's trusted update keys:\n%s\n", res.PublicSPKI)
				return nil
			}
			fmt.Fprintf(w, "wrote %s (private, keep it secret; used by ota release --sign-key)\n", res.PrivateKey)
			fmt.Fprintf(w, "wrote %s (public)\n\n", res.PublicKey)
			fmt.Fprintf(w, "Put the public key in the app's native-update config (NativeUpdate.configure({config: ...})):\n")
			return writeJSONOut(w, map[string]any{"liveUpdate": map[string]any{"security": map[string]any{
				"enableSignatureValidation": true,
				"publicKey":                 res.PublicPEM,
			}}})
		},
	}
	c.Flags().StringVar(&out, "out", "", "folder to write the key pair into (created if missing; required)")
	c.Flags().StringVar(&typ, "type", keyTypeRSA, "key type: "+keyTypeUsage)
	c.Flags().BoolVar(&force, "force", false, "overwrite an existing key pair")
	return c
}

// writeSigningKey generates and writes a key pair of type typ; it refuses to
// overwrite one unless force.
func writeSigningKey(dir, typ string, force bool) (signingKeyResult, error) {
	res := signingKeyResult{Type: typ}
	switch typ {
	case keyTypeRSA:
		res.PrivateKey, res.PublicKey = filepath.Join(dir, signingPrivateFile), filepath.Join(dir, signingPublicFile)
	case keyTypeP256:
		res.PrivateKey, res.PublicKey = filepath.Join(dir, statementPrivateFile), filepath.Join(dir, statementPublicFile)
	default:
		return res, fmt.Errorf("--type %q: use %s", typ, keyTypeUsage)
	}
	if !force {
		for _, p := range []string{res.PrivateKey, res.PublicKey} {
			if _, err := os.Stat(p); err == nil {
				return res, fmt.Errorf("%s already exists (use --force to replace the key pair; devices with the old public key would reject new bundles)", p)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	var privPEM, pubPEM []byte
	var err error
	if typ == keyTypeRSA {
		privPEM, pubPEM, err = newRSAKeyPEM()
	} else {
		privPEM, pubPEM, res.PublicSPKI, err = newP256KeyPEM()
	}
	if err != nil {
		return res, err
	}
	res.PublicPEM = string(pubPEM)
	if err := writeFileMode(res.PrivateKey, privPEM, 0o600); err != nil {
		return res, err
	}
	if err := writeFileMode(res.PublicKey, pubPEM, 0o644); err != nil {
		return res, err
	}
	return res, nil
}

// newRSAKeyPEM makes an RSA-2048 key: PKCS#8 private and SPKI public PEM.
func newRSAKeyPEM() (privPEM, pubPEM []byte, err error) {
	key, err := sign.GenerateRSA(2048)
	if err != nil {
		return nil, nil, err
	}
	if privPEM, err = sign.MarshalPKCS8PrivatePEM(key); err != nil {
		return nil, nil, err
	}
	if pubPEM, err = sign.MarshalSPKIPublicPEM(&key.PublicKey); err != nil {
		return nil, nil, err
	}
	return privPEM, pubPEM, nil
}

// newP256KeyPEM makes an ECDSA P-256 key: PKCS#8 private PEM, SPKI public PEM and
// the same SPKI as one line of base64 (what the seed app builds in).
func newP256KeyPEM() (privPEM, pubPEM []byte, spkiB64 string, err error) {
	key, err := sign.GenerateP256()
	if err != nil {
		return nil, nil, "", err
	}
	if privPEM, err = sign.MarshalECPrivatePEM(key); err != nil {
		return nil, nil, "", err
	}
	der, err := sign.MarshalECPublicSPKI(&key.PublicKey)
	if err != nil {
		return nil, nil, "", err
	}
	pubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return privPEM, pubPEM, base64.StdEncoding.EncodeToString(der), nil
}

// writeFileMode writes data with exactly mode (also when the file existed).
func writeFileMode(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// rsaSignatures signs the bundle digest (hex SHA-256) with RSA-PSS (salt 32) and
// PKCS#1 v1.5, both base64.
func rsaSignatures(pemBytes []byte, sha256hex string) (pss, pkcs1 string, err error) {
	key, err := sign.ParsePrivatePEM(pemBytes)
	if err != nil {
		return "", "", err
	}
	digest, err := hex.DecodeString(sha256hex)
	if err != nil {
		return "", "", err
	}
	if pss, err = sign.SignPSS(key, digest); err != nil {
		return "", "", err
	}
	if pkcs1, err = sign.SignPKCS1(key, digest); err != nil {
		return "", "", err
	}
	return pss, pkcs1, nil
}

// capgoEncrypt encrypts a zip for Capgo devices with the app's private key (as made
// by `@capgo/cli key create`) and returns the bytes to serve and the signature fields.
// key_id comes from the matching public key in its PKCS#1 "RSA PUBLIC KEY" form, the
// form the app config holds.
func capgoEncrypt(pemBytes, zip []byte) ([]byte, release.Signatures, error) {
	key, err := sign.ParsePrivatePEM(pemBytes)
	if err != nil {
		return nil, release.Signatures{}, err
	}
	enc, sessionKey, checksum, err := sign.CapgoEncrypt(key, zip)
	if err != nil {
		return nil, release.Signatures{}, err
	}
	pubPEM := sign.MarshalPKCS1PublicPEM(&key.PublicKey)
	return enc, release.Signatures{SessionKey: sessionKey, EncChecksum: checksum, KeyID: sign.CapgoKeyID(string(pubPEM))}, nil
}
