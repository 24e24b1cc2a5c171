// Command stats is the Lambda behind API Gateway for the stats routes (device statistics):
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
		fmt.Fprintln(os.Stderr, "stats: configuration:", err)
		os.Exit(1)
	}
	lambdahttp.Start(api.New(deps, cfg).Mount(api.StatsRoutes()))
}
