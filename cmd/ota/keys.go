package main

import (
	"errors"
	"fmt"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
	"github.com/spf13/cobra"
)

func newKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "keys",
		Aliases: []string{"key"},
		Short:   "Create, list and revoke API keys (needs an admin key)",
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(newKeysCreateCmd(g), newKeysListCmd(g), newKeysRevokeCmd(g))
	return cmd
}

// validKeyApps checks the --app values of a new key ("*" = every app).
func validKeyApps(apps []string) error {
	if len(apps) == 0 {
		return errors.New("--app is required: the app ids the key may act on (repeat it, or \"*\" for every app)")
	}
	for _, a := range apps {
		if a == "*" {
			continue
		}
		if err := release.ValidAppID(a); err != nil {
			return fmt.Errorf("--app: %w", err)
		}
	}
	return nil
}

func newKeysCreateCmd(g *globals) *cobra.Command {
	var in keyInput
	c := &cobra.Command{
		Use:   "create --name N --app APP_ID... [--admin]",
		Short: "Create an API key; its secret is printed once",
		Long: "Create an API key scoped to apps (repeat --app, or separate with commas; \"*\" = every app).\n" +
			"--admin keys may also create apps and manage keys. The secret is shown only now: store it.",
		Example: "  ota keys create --name ci --app com.example.app\n" +
			"  ota keys create --name ops --app '*' --admin",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in.Name == "" {
				return errors.New("--name is required (what the key is for, e.g. ci)")
			}
			if err := validKeyApps(in.Apps); err != nil {
				return err
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			out, err := cl.createKey(cmd.Context(), in)
			if err != nil {
				return err
			}
			out.Key.Hash = ""
			if g.json {
				return writeJSONOut(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "created key %s (%s) for apps %s%s\n", out.Key.ID, out.Key.Name, keyApps(out.Key), map[bool]string{true: ", admin", false: ""}[out.Key.Admin])
			fmt.Fprintf(w, "secret (shown once, store it now):\n%s\n", out.Secret)
			return nil
		},
	}
	c.Flags().StringVar(&in.Name, "name", "", "what the key is for (required)")
	c.Flags().StringSliceVar(&in.Apps, "app", nil, "app id the key may act on (repeatable; \"*\" = every app)")
	c.Flags().BoolVar(&in.Admin, "admin", false, "may also create apps and manage keys")
	return c
}

func newKeysListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List API keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			ks, err := cl.listKeys(cmd.Context())
			if err != nil {
				return err
			}
			if ks == nil {
				ks = []store.APIKey{}
			}
			if g.json {
				return writeJSONOut(cmd.OutOrStdout(), map[string]any{"keys": ks})
			}
			return printKeys(cmd.OutOrStdout(), ks)
		},
	}
}

func newKeysRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke KEY_ID",
		Short: "Revoke an API key (by id, as ota keys list shows it)",
		Args:  exactArgs("KEY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			out, err := cl.revokeKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json {
				return writeJSONOut(cmd.OutOrStdout(), out)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "revoked key %s (%s) at %s\n", out.Key.ID, out.Key.Name, out.RevokedAt)
			return err
		},
	}
}
