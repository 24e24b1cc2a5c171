package main

import (
	"context"
	"fmt"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/wire"
	"github.com/spf13/cobra"
)

func newAppCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "app",
		Short: "Create, change and show apps",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newAppCreateCmd(g), newAppUpdateCmd(g), newAppListCmd(g), newAppGetCmd(g))
	return cmd
}

// appFields registers the app settings flags on c and returns a function that turns
// the flags the user gave into a wire.AppInput (unset flags stay nil: unchanged).
func appFields(c *cobra.Command) func(cmd *cobra.Command, id string) (wire.AppInput, error) {
	var name, defaultChannel, fluxSecret, deviceToken, nuSignature string
	c.Flags().StringVar(&name, "name", "", "display name")
	c.Flags().StringVar(&defaultChannel, "default-channel", "", "channel for devices that name none (default production)")
	c.Flags().StringVar(&fluxSecret, "flux-secret", "", "HMAC secret shared with Flux clients (16+ characters)")
	c.Flags().StringVar(&deviceToken, "device-token", "", "protect check-device: devices must send this token (16+ characters; \"\" = public)")
	c.Flags().StringVar(&nuSignature, "native-update-signature", "",
		"what native-update's signature field carries: pss (native-update 1.x) or pkcs1 (capacitor-native-update 2.0); \"\" = pss when the release has it")
	return func(cmd *cobra.Command, id string) (wire.AppInput, error) {
		in := wire.AppInput{ID: id}
		if err := release.ValidAppID(id); err != nil {
			return in, err
		}
		set := func(flag string, dst **string, v *string) {
			if cmd.Flags().Changed(flag) {
				*dst = v
			}
		}
		set("name", &in.Name, &name)
		set("default-channel", &in.DefaultChannel, &defaultChannel)
		set("flux-secret", &in.FluxSecret, &fluxSecret)
		set("device-token", &in.DeviceToken, &deviceToken)
		set("native-update-signature", &in.NativeUpdateSignature, &nuSignature)
		if in.NativeUpdateSignature != nil {
			if err := release.ValidNativeUpdateSignature(nuSignature); err != nil {
				return in, fmt.Errorf("--native-update-signature: %w", err)
			}
		}
		if in.DefaultChannel != nil {
			if err := release.ValidChannel(defaultChannel); err != nil {
				return in, err
			}
		}
		return in, nil
	}
}

func newAppCreateCmd(g *globals) *cobra.Command {
	var in wire.AppInput
	c := &cobra.Command{
		Use:   "create APP_ID",
		Short: "Create an app (needs an admin key)",
		Long: "Create an app. APP_ID is the app's bundle id (letters, digits and . _ -), e.g. com.example.app.\n" +
			"Devices that name no channel get the app's default channel (production unless --default-channel).",
		Example: "  ota app create com.example.app --name \"Example\"",
		Args:    exactArgs("APP_ID"),
	}
	fields := appFields(c)
	c.RunE = apiCall[wire.AppView]{
		g: g,
		check: func(cmd *cobra.Command, args []string) (err error) {
			in, err = fields(cmd, args[0])
			return err
		},
		call: func(ctx context.Context, cl *client, _ []string) (wire.AppView, error) {
			return cl.createApp(ctx, in)
		},
		human: printApp,
	}.run
	return c
}

func newAppUpdateCmd(g *globals) *cobra.Command {
	var in wire.AppInput
	c := &cobra.Command{
		Use:   "update APP_ID [--name N] [--default-channel C] [--flux-secret S] [--device-token T] [--native-update-signature pss|pkcs1]",
		Short: "Change an app's settings (only the flags given)",
		Long: "Change an app's settings; flags not given stay as they are.\n\n" +
			"--native-update-signature picks the scheme native-update answers carry in signature and\n" +
			"signatureAlgorithm: pss (RSA-PSS salt 32, what native-update 1.x verifies) or pkcs1 (RSA\n" +
			"PKCS#1 v1.5, the scheme of capacitor-native-update 2.0's verifier). Both forms stay in\n" +
			"signaturePss and signaturePkcs1. \"\" returns to the default (pss when the release has it).",
		Example: "  ota app update com.example.app --device-token \"$(openssl rand -hex 16)\"\n" +
			"  ota app update com.example.app --native-update-signature pkcs1",
		Args: exactArgs("APP_ID"),
	}
	fields := appFields(c)
	c.RunE = apiCall[wire.AppView]{
		g: g,
		check: func(cmd *cobra.Command, args []string) (err error) {
			in, err = fields(cmd, args[0])
			in.ID = ""
			return err
		},
		call: func(ctx context.Context, cl *client, args []string) (wire.AppView, error) {
			return cl.updateApp(ctx, args[0], in)
		},
		human: printApp,
	}.run
	return c
}

func newAppListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the apps this key may act on",
		Args:  cobra.NoArgs,
		RunE: apiCall[[]wire.AppView]{
			g: g,
			call: func(ctx context.Context, cl *client, _ []string) ([]wire.AppView, error) {
				return cl.listApps(ctx)
			},
			json:  listIn[wire.AppView]("apps"),
			human: printApps,
		}.run,
	}
}

func newAppGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get APP_ID",
		Short: "Show one app",
		Args:  exactArgs("APP_ID"),
		RunE: apiCall[wire.AppView]{
			g: g,
			check: func(_ *cobra.Command, args []string) error {
				return release.ValidAppID(args[0])
			},
			call: func(ctx context.Context, cl *client, args []string) (wire.AppView, error) {
				return cl.getApp(ctx, args[0])
			},
			human: printApp,
		}.run,
	}
}
