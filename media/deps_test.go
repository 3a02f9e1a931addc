package media_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps media at the bottom of the graph: adapters turn wire protocols
// into legs and know nothing of what a digit means, so no package under media may depend on
// the flow, verification logic, state or prompts. Heavy dependencies stay in the one adapter
// that needs them.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/callproof/callproof/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	banned := map[string]string{
		mod + "ivr":      "media must not know the call flow",
		mod + "kba":      "media must not know verification rules",
		mod + "sessions": "media must not know state, tokens or agents",
		mod + "prompts":  "prompts import media, not the other way round",
		mod + "cmd":      "nothing imports the binary",
	}
	heavy := map[string]string{ // dependency -> the only package allowed to pull it in
		"github.com/pion/webrtc/v4":                      mod + "media/webrtc",
		"github.com/emiago/sipgo":                        mod + "media/sip",
		"github.com/redis/go-redis/v9":                   "",
		"github.com/go-jose/go-jose/v4":                  "",
		"github.com/prometheus/client_golang/prometheus": "",
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		for _, d := range deps {
			for b, why := range banned {
				if d == b || strings.HasPrefix(d, b+"/") {
					t.Errorf("%s imports %s: %s", pkg, d, why)
				}
			}
			for h, owner := range heavy {
				if d != h && !strings.HasPrefix(d, h+"/") {
					continue
				}
				if owner != "" && (pkg == owner || strings.HasPrefix(pkg, owner+"/")) {
					continue
				}
				t.Errorf("%s depends on %s: heavy dependencies stay in their own adapter (%s)", pkg, d, ownerOr(owner))
			}
		}
	}
}

func ownerOr(owner string) string {
	if owner == "" {
		return "not under media at all"
	}
	return owner
}
