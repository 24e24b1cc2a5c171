package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/wire"
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
	var in wire.KeyInput
	c := &cobra.Command{
		Use:   "create --name N --app APP_ID... [--admin]",
		Short: "Create an API key; its secret is printed once",
		Long: "Create an API key scoped to apps (repeat --app, or separate with commas; \"*\" = every app).\n" +
			"--admin keys may also create apps and manage keys. The secret is shown only now: store it.",
		Example: "  ota keys create --name ci --app com.example.app\n" +
			"  ota keys create --name ops --app '*' --admin",
		Args: cobra.NoArgs,
		RunE: apiCall[wire.CreateKeyAnswer]{
			g: g,
			check: func(*cobra.Command, []string) error {
				if in.Name == "" {
					return errors.New("--name is required (what the key is for, e.g. ci)")
				}
				return validKeyApps(in.Apps)
			},
			call: func(ctx context.Context, cl *client, _ []string) (wire.CreateKeyAnswer, error) {
				out, err := cl.createKey(ctx, in)
				out.Key.Hash = ""
				return out, err
			},
			human: func(w io.Writer, out wire.CreateKeyAnswer) error {
				fmt.Fprintf(w, "created key %s (%s) for apps %s%s\n", out.Key.ID, out.Key.Name, keyApps(out.Key), map[bool]string{true: ", admin", false: ""}[out.Key.Admin])
				fmt.Fprintf(w, "secret (shown once, store it now):\n%s\n", out.Secret)
				return nil
			},
		}.run,
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
		RunE: apiCall[[]store.APIKey]{
			g: g,
			call: func(ctx context.Context, cl *client, _ []string) ([]store.APIKey, error) {
				return cl.listKeys(ctx)
			},
			json:  listIn[store.APIKey]("keys"),
			human: printKeys,
		}.run,
	}
}

func newKeysRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke KEY_ID",
		Short: "Revoke an API key (by id, as ota keys list shows it)",
		Args:  exactArgs("KEY_ID"),
		RunE: apiCall[wire.RevokeKeyAnswer]{
			g: g,
			call: func(ctx context.Context, cl *client, args []string) (wire.RevokeKeyAnswer, error) {
				return cl.revokeKey(ctx, args[0])
			},
			human: func(w io.Writer, out wire.RevokeKeyAnswer) error {
				_, err := fmt.Fprintf(w, "revoked key %s (%s) at %s\n", out.Key.ID, out.Key.Name, out.RevokedAt)
				return err
			},
		}.run,
	}
}
