package main

import "github.com/spf13/cobra"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "ota",
		Short:         "Publish and manage over-the-air web bundle releases",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newPatchCmd())
	return root
}
