package otp_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps otp a leaf: the standard library, zap and x/time/rate only. It must not
// import kba (sessions may not import kba: subjects arrive hashed, contacts as plain values),
// the sessions root or any other Callproof package, so that ivr can depend on it without a
// cycle and a Redis Store can live beside it.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Deps "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := []string{"go.uber.org/zap", "go.uber.org/multierr", "golang.org/x/time/rate"}
	for _, d := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(d, "/")
		if !strings.Contains(first, ".") { // standard library
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || d == a || strings.HasPrefix(d, a+"/")
		}
		if !ok {
			t.Errorf("otp depends on %s: only the standard library, zap and x/time/rate are allowed "+
				"(Callproof packages would couple passcode state to the call flow or cycle through ivr)", d)
		}
	}
}
