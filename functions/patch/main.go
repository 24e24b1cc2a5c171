// Command patch is the Lambda S3 invokes when a bundle lands under bundles/: it
// verifies and unpacks the bundle, marks the release ready and precomputes patches
// (shared/publish), through the event handling of shared/s3event.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/otakit/ota/shared/awsenv"
	"github.com/otakit/ota/shared/s3event"
)

func main() {
	deps, _, err := awsenv.Load(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "patch: configuration:", err)
		os.Exit(1)
	}
	h := s3event.Handler{Ingester: deps.Pipeline, Bucket: os.Getenv(awsenv.EnvBucket), Log: deps.Log}
	lambda.Start(h.Handle)
}
