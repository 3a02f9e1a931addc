package audit

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite the testdata fixtures, goldens and fuzz seeds")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
