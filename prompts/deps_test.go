package prompts_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps prompts a leaf above media: it turns text and WAV files into
// clips and knows nothing of the flow, verification, state or wire protocols, so ivr can
// depend on it without a cycle and the catalog can be loaded by any tool.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/callproof/callproof/"
	out, err := exec.Command("go", "list", "-f", `{{join .Deps " "}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, d := range strings.Fields(string(out)) {
		if strings.HasPrefix(d, mod) && d != mod+"media" {
			t.Errorf("prompts depends on %s: prompts imports only the root media package", d)
		}
	}
}
