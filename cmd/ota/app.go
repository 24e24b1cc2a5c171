package main

import (
	"github.com/otakit/ota/shared/release"
	"github.com/spf13/cobra"
)

func newAppCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "app",
		Short: "Create and show apps",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newAppCreateCmd(g), newAppListCmd(g), newAppGetCmd(g))
	return cmd
}

func newAppCreateCmd(g *globals) *cobra.Command {
	var name, defaultChannel, fluxSecret string
	c := &cobra.Command{
		Use:   "create APP_ID",
		Short: "Create an app (needs an admin key)",
		Long: "Create an app. APP_ID is the app's bundle id (letters, digits and . _ -), e.g. com.example.app.\n" +
			"Devices that name no channel get the app's default channel (production unless --default-channel).",
		Example: "  ota app create com.example.app --name \"Example\"",
		Args:    exactArgs("APP_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := appInput{ID: args[0]}
			if err := release.ValidAppID(in.ID); err != nil {
				return err
			}
			if cmd.Flags().Changed("name") {
				in.Name = &name
			}
			if cmd.Flags().Changed("default-channel") {
				if err := release.ValidChannel(defaultChannel); err != nil {
					return err
				}
				in.DefaultChannel = &defaultChannel
			}
			if cmd.Flags().Changed("flux-secret") {
				in.FluxSecret = &fluxSecret
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			a, err := cl.createApp(cmd.Context(), in)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSONOut(cmd.OutOrStdout(), a)
			}
			return printApp(cmd.OutOrStdout(), a)
		},
	}
	c.Flags().StringVar(&name, "name", "", "display name")
	c.Flags().StringVar(&defaultChannel, "default-channel", "", "channel for devices that name none (default production)")
	c.Flags().StringVar(&fluxSecret, "flux-secret", "", "HMAC secret shared with Flux clients (16+ characters)")
	return c
}

func newAppListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the apps this key may act on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			apps, err := cl.listApps(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				if apps == nil {
					apps = []appView{}
				}
				return writeJSONOut(cmd.OutOrStdout(), map[string]any{"apps": apps})
			}
			return printApps(cmd.OutOrStdout(), apps)
		},
	}
}

func newAppGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get APP_ID",
		Short: "Show one app",
		Args:  exactArgs("APP_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := release.ValidAppID(args[0]); err != nil {
				return err
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			a, err := cl.getApp(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json {
				return writeJSONOut(cmd.OutOrStdout(), a)
			}
			return printApp(cmd.OutOrStdout(), a)
		},
	}
}
