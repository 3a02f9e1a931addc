package main

import (
	"context"
	"os"
	"testing"
)

// TestMain lets the test binary stand in for callproof where a command starts callproof's
// own executable: `callproof load` starts its agent stream reader so.
func TestMain(m *testing.M) {
	if code, ok := asAgentWatchChild(context.Background()); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
