package awse2e

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/otakit/ota/infra/lambdarie"
)

// TestMain builds each Lambda function once for the whole package
// (lambdarie.Main, which removes the binaries at the end), removes the commands
// binary built, and writes the RIE figures to OTA_RIE_REPORT when it is set.
func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	defer removeBinaries()
	code := lambdarie.Main(m)
	if err := writeRIEReport(os.Getenv("OTA_RIE_REPORT")); err != nil {
		fmt.Fprintln(os.Stderr, "OTA_RIE_REPORT:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// rieReport is what the RIE tests measured; each test fills its own part.
var (
	rieReportMu sync.Mutex
	rieReport   struct {
		Functions []rieFigure  `json:"functions,omitempty"` // TestFunctionsUnderLambdaRIE
		Warm      []warmFigure `json:"warm,omitempty"`      // TestRIEWarmCosts
	}
)

// writeRIEReport writes the figures as JSON to path, if any test measured some.
func writeRIEReport(path string) error {
	rieReportMu.Lock()
	defer rieReportMu.Unlock()
	if path == "" || (rieReport.Functions == nil && rieReport.Warm == nil) {
		return nil
	}
	b, err := json.MarshalIndent(rieReport, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
