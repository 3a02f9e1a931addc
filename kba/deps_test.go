package kba_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps kba pure: it is verification logic, and storage and media come in
// through interfaces, so kba (and its test kit, apart from kba itself) imports no other Callproof
// package and none of the heavy dependencies that belong to adapters.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/callproof/callproof/"
	heavy := []string{"github.com/gorilla/websocket", "github.com/redis/go-redis", "github.com/pion/",
		"github.com/emiago/sipgo", "github.com/go-jose/go-jose", "github.com/prometheus/", "github.com/go-audio/"}
	tests := []struct {
		pkg     string
		allowed map[string]bool
	}{
		{mod + "kba", map[string]bool{mod + "kba": true}},
		{mod + "kba/kbatest", map[string]bool{mod + "kba": true, mod + "kba/kbatest": true}},
	}
	for _, tt := range tests {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", tt.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", tt.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, mod) && !tt.allowed[dep] {
				t.Errorf("%s depends on %s: kba is pure verification logic; storage and media come in through interfaces", tt.pkg, dep)
			}
			for _, h := range heavy {
				if strings.HasPrefix(dep, h) {
					t.Errorf("%s depends on %s: heavy dependencies stay in their adapter packages, never in verification logic", tt.pkg, dep)
				}
			}
		}
	}
}
