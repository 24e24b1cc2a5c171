// Command check is the Lambda behind API Gateway for the check routes (device update checks and download redirects):
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
		fmt.Fprintln(os.Stderr, "check: configuration:", err)
		os.Exit(1)
	}
	lambdahttp.Start(api.New(deps, cfg).Mount(api.CheckRoutes()))
}
