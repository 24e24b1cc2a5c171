// Command upload is the Lambda behind API Gateway for the upload routes (release creation and uploads):
// it only wires configuration and dependencies; the handlers live in shared/api.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/otakit/ota/shared/api"
	"github.com/otakit/ota/shared/awsenv"
	"github.com/otakit/ota/shared/lambdahttp"
)

func main() {
	deps, cfg, err := awsenv.Load(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "upload: configuration:", err)
		os.Exit(1)
	}
	lambdahttp.Start(api.New(deps, cfg).Mount(api.UploadRoutes()))
}
