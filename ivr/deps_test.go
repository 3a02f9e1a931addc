package ivr_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps ivr on the root packages: transports, token signing, agent
// delivery and stores are injected by cmd, so the flow can be tested over in-memory legs and
// never drags a wire protocol or a database client in.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/callproof/callproof/"
	out, err := exec.Command("go", "list", "-f", `{{join .Deps " "}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{mod + "media": true, mod + "prompts": true, mod + "kba": true, mod + "sessions": true}
	heavy := []string{"github.com/gorilla/websocket", "github.com/redis/go-redis", "github.com/pion/webrtc",
		"github.com/emiago/sipgo", "github.com/go-jose/go-jose"}
	for _, d := range strings.Fields(string(out)) {
		if strings.HasPrefix(d, mod) && !allowed[d] {
			t.Errorf("ivr depends on %s: ivr imports only the root packages media, prompts, kba and sessions; cmd injects adapters", d)
		}
		for _, h := range heavy {
			if strings.HasPrefix(d, h) {
				t.Errorf("ivr depends on %s: heavy dependencies stay in their adapter packages", d)
			}
		}
	}
}
