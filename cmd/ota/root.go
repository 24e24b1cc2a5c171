package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/otakit/ota/shared/release"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// defaultServer is where otad listens by default.
const defaultServer = "http://127.0.0.1:8080"

// globals are the persistent flags every command shares.
type globals struct {
	server string
	key    string // from --key or OTA_API_KEY; never printed
	json   bool
	flags  *pflag.FlagSet // the persistent flags, to tell --server given from its default
}

// flagOrEnv returns the server and key from the flags, else the environment.
func (g *globals) flagOrEnv() (server, key string) {
	server, key = g.server, g.key
	if key == "" {
		key = os.Getenv("OTA_API_KEY")
	}
	return server, key
}

// serverGiven reports whether --server or OTA_SERVER named the server.
func (g *globals) serverGiven() bool {
	return g.flags == nil || g.flags.Changed("server") || os.Getenv("OTA_SERVER") != ""
}

// client returns a management API client: flag > environment > ota login.
func (g *globals) client() (*client, error) {
	server, key := g.flagOrEnv()
	if key == "" || !g.serverGiven() {
		p, err := loadProfile()
		if err != nil {
			return nil, err
		}
		if !g.serverGiven() && p.Server != "" {
			server = p.Server
		}
		// The saved key goes only to the server it was checked against.
		if key == "" && p.Key != "" && sameServer(server, p.Server) {
			key = p.Key
		}
	}
	return newClient(server, key)
}

func sameServer(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "ota",
		Short: "Publish and manage over-the-air web bundle releases",
		Long: "ota publishes web bundles to an OTA server (otad or the AWS deployment) and manages\n" +
			"apps, releases, channels and API keys through its management API.\n\n" +
			"Environment: OTA_SERVER (default for --server), OTA_API_KEY (default for --key);\n" +
			"without either, the server and key saved by ota login are used.\n" +
			"With --json, results are printed on stdout as JSON; messages and errors go to stderr.",
		Example: "  export OTA_SERVER=http://127.0.0.1:8080 OTA_API_KEY=ota_...\n" +
			"  ota app create com.example.app\n" +
			"  ota release ./www --app com.example.app --version 1.0.0 --channel production\n" +
			"  ota releases --app com.example.app",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	server := os.Getenv("OTA_SERVER")
	if server == "" {
		server = defaultServer
	}
	pf := root.PersistentFlags()
	g.flags = pf
	pf.StringVar(&g.server, "server", server, "OTA server base URL (env OTA_SERVER)")
	// The key's default is read at run time, so --help never shows it.
	pf.StringVar(&g.key, "key", "", "API key (env OTA_API_KEY)")
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON on stdout")

	root.AddCommand(
		newAppCmd(g),
		newReleaseCmd(g),
		newReleasesCmd(g),
		newChannelCmd(g),
		newKeysCmd(g),
		newSigningKeyCmd(g),
		newLoginCmd(g),
		newLogoutCmd(),
	)
	root.AddCommand(newPatchCmd(), newDeviceCmd(), newInfraCmd(g))
	root.AddCommand(newSafetyCmds(g)...)
	return root
}

// exactArgs requires one positional argument per name, with a message that names them.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == len(names) {
			return nil
		}
		what := "no arguments"
		if len(names) > 0 {
			what = strings.Join(names, " ")
		}
		return fmt.Errorf("%s expects %s (got %d arguments); see: %s --help", cmd.CommandPath(), what, len(args), cmd.CommandPath())
	}
}

// needApp checks the --app flag.
func needApp(app string) error {
	if app == "" {
		return errors.New("--app is required (the app id, e.g. com.example.app)")
	}
	if err := release.ValidAppID(app); err != nil {
		return fmt.Errorf("--app: %w", err)
	}
	return nil
}
