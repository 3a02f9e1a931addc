package main

import (
	"context"
	"os"
	"testing"
)

// TestMain lets the test binary stand in for callproof where a command starts callproof's
// own executable: `callproof load` starts its agent stream reader so.
func TestMain(m *testing.M) {
	if server := os.Getenv(agentWatchEnv); server != "" {
		os.Exit(agentWatchProcess(context.Background(), server, os.Getenv("CALLPROOF_AGENT_KEY"), os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}
