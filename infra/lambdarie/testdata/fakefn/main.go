// Command fakefn is a Lambda function for the package's RIE tests: the event's
// "mode" (or an API Gateway event's ?mode=) picks what it does.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Mode  string            `json:"mode"`
	N     int               `json:"n"`
	Query map[string]string `json:"queryStringParameters"`
}

func main() {
	fmt.Fprintln(os.Stderr, "fakefn: init")
	lambda.Start(func(ctx context.Context, e event) (any, error) {
		if e.Query != nil {
			e.Mode = e.Query["mode"]
			e.N, _ = strconv.Atoi(e.Query["n"])
		}
		fmt.Println("fakefn: mode", e.Mode)
		switch e.Mode {
		case "error":
			return nil, errors.New("boom")
		case "exit":
			os.Exit(2)
		case "sleep":
			time.Sleep(time.Duration(e.N) * time.Millisecond)
		case "big":
			return map[string]any{"statusCode": 200, "body": strings.Repeat("x", e.N)}, nil
		case "env":
			dl, _ := ctx.Deadline()
			return map[string]any{"pid": os.Getpid(), "deadline_ms": time.Until(dl).Milliseconds(), "cwd": must(os.Getwd()),
				"name": os.Getenv("AWS_LAMBDA_FUNCTION_NAME"), "memory": os.Getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
				"custom": os.Getenv("FAKEFN_VAR"), "home": os.Getenv("HOME"), "leak": os.Getenv("FAKEFN_LEAK")}, nil
		}
		return map[string]any{"statusCode": 200, "headers": map[string]string{"Content-Type": "text/plain"}, "body": "ok " + e.Mode}, nil
	})
}

func must(s string, _ error) string { return s }
