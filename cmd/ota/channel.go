package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/wire"
	"github.com/spf13/cobra"
)

func newChannelCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "channel",
		Short: "Point channels at releases and show them",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newChannelSetCmd(g), newChannelListCmd(g), newChannelGetCmd(g))
	return cmd
}

// channelSetFlags are the flags of `ota channel set`; only the flags given are sent.
type channelSetFlags struct {
	app, version                                 string
	public, allowSelfSet, noEmulator, noDevBuild bool
}

// channelInputFromFlags builds the PUT body from the flags that were given.
func channelInputFromFlags(cmd *cobra.Command, f *channelSetFlags) (wire.ChannelInput, error) {
	var in wire.ChannelInput
	fl := cmd.Flags()
	if fl.Changed("version") {
		if err := release.ValidVersion(f.version); err != nil {
			return in, fmt.Errorf("--version: %w", err)
		}
		in.Version = &f.version
	}
	if fl.Changed("public") {
		in.Public = &f.public
	}
	if fl.Changed("allow-self-set") {
		in.AllowSelfSet = &f.allowSelfSet
	}
	if fl.Changed("no-emulator") {
		in.NoEmulator = &f.noEmulator
	}
	if fl.Changed("no-dev-build") {
		in.NoDevBuild = &f.noDevBuild
	}
	if noChannelFields(in) {
		return in, errors.New("nothing to set: give --version and/or --public, --allow-self-set, --no-emulator, --no-dev-build")
	}
	return in, nil
}

func newChannelSetCmd(g *globals) *cobra.Command {
	f := &channelSetFlags{}
	var in wire.ChannelInput
	c := &cobra.Command{
		Use:   "set CHANNEL --app APP_ID [--version V] [--public] [--allow-self-set] [--no-emulator] [--no-dev-build]",
		Short: "Create or change a channel (e.g. point it at a ready release)",
		Long: "Create or change a channel. --version points it at a ready release (every device on the\n" +
			"channel gets it on its next check). Boolean flags take =false to turn them off,\n" +
			"e.g. --public=false; flags not given keep their current value.",
		Example: "  ota channel set production --app com.example.app --version 1.0.1\n" +
			"  ota channel set beta --app com.example.app --version 1.1.0-beta.1 --allow-self-set",
		Args: exactArgs("CHANNEL"),
		RunE: apiCall[channelOut]{
			g: g, app: &f.app,
			check: func(cmd *cobra.Command, args []string) error {
				if err := release.ValidChannel(args[0]); err != nil {
					return err
				}
				var err error
				in, err = channelInputFromFlags(cmd, f)
				return err
			},
			call: func(ctx context.Context, cl *client, args []string) (channelOut, error) {
				return cl.setChannel(ctx, f.app, args[0], in)
			},
			human: printChannel,
		}.run,
	}
	fl := c.Flags()
	fl.StringVar(&f.app, "app", "", "app id (required)")
	fl.StringVar(&f.version, "version", "", "release the channel serves (must be ready)")
	fl.BoolVar(&f.public, "public", false, "mark the channel public: Capgo devices may name it and see it when they list channels")
	fl.BoolVar(&f.allowSelfSet, "allow-self-set", false, "devices may switch themselves to this channel (and Capgo devices may name it)")
	fl.BoolVar(&f.noEmulator, "no-emulator", false, "do not serve emulators")
	fl.BoolVar(&f.noDevBuild, "no-dev-build", false, "do not serve development builds")
	return c
}

func newChannelListCmd(g *globals) *cobra.Command {
	var app string
	c := &cobra.Command{
		Use:   "list --app APP_ID",
		Short: "List an app's channels",
		Args:  cobra.NoArgs,
		RunE: apiCall[[]release.Channel]{
			g: g, app: &app,
			call: func(ctx context.Context, cl *client, _ []string) ([]release.Channel, error) {
				return cl.listChannels(ctx, app)
			},
			json:  listIn[release.Channel]("channels"),
			human: printChannels,
		}.run,
	}
	c.Flags().StringVar(&app, "app", "", "app id (required)")
	return c
}

func newChannelGetCmd(g *globals) *cobra.Command {
	var app string
	c := &cobra.Command{
		Use:   "get CHANNEL --app APP_ID",
		Short: "Show a channel and its recent history",
		Args:  exactArgs("CHANNEL"),
		RunE: apiCall[channelOut]{
			g: g, app: &app,
			call: func(ctx context.Context, cl *client, args []string) (channelOut, error) {
				return cl.getChannel(ctx, app, args[0])
			},
			human: printChannel,
		}.run,
	}
	c.Flags().StringVar(&app, "app", "", "app id (required)")
	return c
}
