package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/otakit/ota/shared/awsclient"
	"github.com/otakit/ota/shared/blob/s3blob"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/dynamo"
)

// newInfraCmd bootstraps AWS (or LocalStack, or the emulators) storage with the
// project's own code: the DynamoDB table, the S3 bucket and the first admin key.
// Endpoints come from the SDK's standard environment (AWS_ENDPOINT_URL, ...).
func newInfraCmd(g *globals) *cobra.Command {
	infra := &cobra.Command{Use: "infra", Short: "Set up AWS storage (table, bucket, first admin key)"}
	var table, bucket string
	var noKey bool
	init := &cobra.Command{
		Use:   "init --table T --bucket B",
		Short: "Create the DynamoDB table and S3 bucket if missing, and a first admin key if there is none",
		Long: "Creates the table (pk/sk, on-demand, TTL on exp) and the bucket when they are missing, then\n" +
			"an admin API key when the table holds none, printed once. Uses the standard AWS\n" +
			"environment: credentials, AWS_REGION, and AWS_ENDPOINT_URL for LocalStack\n" +
			"(e.g. AWS_ENDPOINT_URL=http://localhost:4566).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			ddb, err := awsclient.DynamoDBFromEnv(ctx)
			if err != nil {
				return err
			}
			if err := dynamo.CreateTable(ctx, ddb, table); err != nil {
				return fmt.Errorf("create table %s: %w", table, err)
			}
			s3c, err := awsclient.S3FromEnv(ctx)
			if err != nil {
				return err
			}
			if err := s3blob.EnsureBucket(ctx, s3c, bucket); err != nil {
				return fmt.Errorf("create bucket %s: %w", bucket, err)
			}
			out := map[string]string{"table": table, "bucket": bucket}
			if !noKey {
				st := store.New(dynamo.New(ddb, table))
				keys, err := st.ListKeys(ctx)
				if err != nil {
					return err
				}
				if len(keys) == 0 {
					secret := store.NewKeySecret()
					if _, err := st.CreateKey(ctx, secret, "first admin key", []string{"*"}, true, "ota infra init"); err != nil {
						return err
					}
					out["admin_key"] = secret
				}
			}
			if g.json {
				return writeJSONOut(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "table %s and bucket %s are ready\n", table, bucket)
			if k := out["admin_key"]; k != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "first admin key (shown once, store it now): %s\n", k)
			}
			return nil
		},
	}
	init.Flags().StringVar(&table, "table", "", "DynamoDB table name (required)")
	init.Flags().StringVar(&bucket, "bucket", "", "S3 bucket name (required)")
	init.Flags().BoolVar(&noKey, "no-admin-key", false, "do not create a first admin key")
	_ = init.MarkFlagRequired("table")
	_ = init.MarkFlagRequired("bucket")
	infra.AddCommand(init)
	return infra
}
