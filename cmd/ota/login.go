package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// profile is what `ota login` saves: one server and its API key, used when neither
// a flag nor an environment variable names them.
type profile struct {
	Server string `json:"server"`
	Key    string `json:"key"` // never printed
}

// profilePath is <user config dir>/ota/config.json (XDG_CONFIG_HOME on Linux).
func profilePath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no user config folder: %w", err)
	}
	return filepath.Join(dir, "ota", "config.json"), nil
}

// loadProfile returns the saved profile; a missing file is the zero profile.
func loadProfile() (profile, error) {
	var p profile
	path, err := profilePath()
	if err != nil {
		return p, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	} else if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return profile{}, fmt.Errorf("%s: %w (run ota logout, then ota login again)", path, err)
	}
	return p, nil
}

// saveProfile writes the profile readable by the user only: it holds a key.
func saveProfile(p profile) (string, error) {
	path, err := profilePath()
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	// MkdirAll keeps the mode of a folder that exists already.
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return "", err
	}
	// Written beside and renamed, so a crash never leaves half a file.
	tmp, err := os.CreateTemp(dir, ".config-*.json")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp.Name(), path)
}

func newLoginCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "login",
		Short: "Check an API key against the server and save both for later commands",
		Long: "login checks --key (or OTA_API_KEY) against --server (or OTA_SERVER) and saves both\n" +
			"in the user config folder (ota/config.json, readable by you only). Later commands\n" +
			"use them when no flag or environment variable is given: flag > environment > login.\n" +
			"The saved key is only sent to the saved server.",
		Example: "  ota login --server https://ota.example.com --key ota_...",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			server, key := g.flagOrEnv()
			if key == "" {
				return errors.New("no API key: pass --key or set OTA_API_KEY (ota login saves them)")
			}
			cl, err := newClient(server, key)
			if err != nil {
				return err
			}
			// Any valid key may list apps: the cheapest authenticated call.
			if _, err := cl.listApps(cmd.Context()); err != nil {
				return fmt.Errorf("login failed, nothing saved: %w", err)
			}
			path, err := saveProfile(profile{Server: cl.base, Key: key})
			if err != nil {
				return fmt.Errorf("cannot save the login: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "logged in to %s (saved in %s)\n", cl.base, path)
			return nil
		},
	}
}

func newLogoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the server and key saved by ota login",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := profilePath()
			if err != nil {
				return err
			}
			if err := os.Remove(path); errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintln(cmd.ErrOrStderr(), "not logged in")
				return nil
			} else if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "logged out (removed %s)\n", path)
			return nil
		},
	}
}
