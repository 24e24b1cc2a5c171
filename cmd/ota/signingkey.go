package main

import (
	"encoding/hex"
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
	signingPrivateFile = "signing_private.pem"
	signingPublicFile  = "signing_public.pem"
)

func newSigningKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "signing-key",
		Short: "Make the RSA key pair that signs bundles for native-update clients",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newSigningKeyCreateCmd(g))
	return cmd
}

type signingKeyResult struct {
	PrivateKey string `json:"private_key"` // file path
	PublicKey  string `json:"public_key"`  // file path
	PublicPEM  string `json:"public_pem"`  // what goes into liveUpdate.security.publicKey
}

func newSigningKeyCreateCmd(g *globals) *cobra.Command {
	var out string
	var force bool
	c := &cobra.Command{
		Use:   "create --out DIR",
		Short: "Write signing_private.pem (PKCS#8, mode 0600) and signing_public.pem (SPKI) into DIR",
		Long: "Create an RSA-2048 key pair for bundle signatures. Keep signing_private.pem secret (it stays\n" +
			"on the machine that publishes: pass it to ota release --sign-key); put the public key in the\n" +
			"app's native-update config as liveUpdate.security.publicKey, with\n" +
			"liveUpdate.security.enableSignatureValidation: true.",
		Example: "  ota signing-key create --out ./keys\n" +
			"  ota release ./www --app com.example.app --version 1.0.1 --sign-key ./keys/signing_private.pem",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required (the folder to write the key pair into)")
			}
			res, err := writeSigningKey(out, force)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSONOut(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
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
	c.Flags().BoolVar(&force, "force", false, "overwrite an existing key pair")
	return c
}

// writeSigningKey generates and writes the key pair; it refuses to overwrite one.
func writeSigningKey(dir string, force bool) (signingKeyResult, error) {
	priv := filepath.Join(dir, signingPrivateFile)
	pub := filepath.Join(dir, signingPublicFile)
	if !force {
		for _, p := range []string{priv, pub} {
			if _, err := os.Stat(p); err == nil {
				return signingKeyResult{}, fmt.Errorf("%s already exists (use --force to replace the key pair; devices with the old public key would reject new bundles)", p)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return signingKeyResult{}, err
	}
	key, err := sign.GenerateRSA(2048)
	if err != nil {
		return signingKeyResult{}, err
	}
	privPEM, err := sign.MarshalPKCS8PrivatePEM(key)
	if err != nil {
		return signingKeyResult{}, err
	}
	pubPEM, err := sign.MarshalSPKIPublicPEM(&key.PublicKey)
	if err != nil {
		return signingKeyResult{}, err
	}
	if err := writeFileMode(priv, privPEM, 0o600); err != nil {
		return signingKeyResult{}, err
	}
	if err := writeFileMode(pub, pubPEM, 0o644); err != nil {
		return signingKeyResult{}, err
	}
	return signingKeyResult{PrivateKey: priv, PublicKey: pub, PublicPEM: string(pubPEM)}, nil
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
