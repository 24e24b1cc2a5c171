package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	devclient "github.com/otakit/ota/shared/client"
)

// newDeviceCmd is the Go device client as a command: what an app's updater does.
func newDeviceCmd() *cobra.Command {
	dev := &cobra.Command{Use: "device", Short: "Act as a device (the Go device client)"}
	var cfg devclient.Config
	var asJSON bool
	sync := &cobra.Command{
		Use:   "sync --app APP_ID --dir DIR [--channel C]",
		Short: "Check once; download a patch or the full bundle, verify it and switch DIR/current atomically",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Server, _ = cmd.Flags().GetString("server") // the global flag (env OTA_SERVER)
			c, err := devclient.New(cfg)
			if err != nil {
				return err
			}
			res, err := c.Sync(cmd.Context())
			if err != nil {
				return fmt.Errorf("sync: %w", err)
			}
			if asJSON || jsonFlag(cmd) {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			switch res.Action {
			case "updated":
				fmt.Fprintf(cmd.OutOrStdout(), "updated %s -> %s via %s (%s downloaded); live tree: %s\n", orBuiltin(res.From), res.To, res.Via, fmtBytes(res.Bytes), c.LiveDir())
			case "reverted":
				fmt.Fprintf(cmd.OutOrStdout(), "reverted %s -> built-in bundle\n", res.From)
			case "incompatible":
				fmt.Fprintf(cmd.OutOrStdout(), "update %s available but %s\n", res.To, res.Message)
			default:
				fmt.Fprintf(cmd.OutOrStdout(), "up to date (%s)\n", orBuiltin(res.From))
			}
			return nil
		},
	}
	f := sync.Flags()
	f.StringVar(&cfg.AppID, "app", "", "app id (required)")
	f.StringVar(&cfg.Channel, "channel", "", "channel (default: the app's default channel)")
	f.StringVar(&cfg.Dir, "dir", "", "app folder; DIR/current is the live tree (required)")
	f.StringVar(&cfg.Platform, "platform", "android", "platform reported to the server")
	f.StringVar(&cfg.Binary, "binary-version", "", "native app version reported to the server")
	f.StringVar(&cfg.Token, "device-token", "", "device token of a protected app")
	f.BoolVar(&asJSON, "json-result", false, "print the result as JSON")
	_ = sync.MarkFlagRequired("app")
	_ = sync.MarkFlagRequired("dir")
	dev.AddCommand(sync)
	return dev
}

func orBuiltin(v string) string {
	if v == "" {
		return "built-in bundle"
	}
	return v
}

// jsonFlag reads the global --json flag when the root defines it.
func jsonFlag(cmd *cobra.Command) bool {
	v, err := cmd.Flags().GetBool("json")
	return err == nil && v
}
