package sessions_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps sessions a leaf of the project graph. The call flow (ivr)
// depends on sessions' small interfaces; if sessions imported ivr, kba or media the graph
// would cycle, and if the root pulled in go-jose, gorilla/websocket or go-redis, every
// package that only needs the Attempts or Publisher interface would link a JOSE stack, a
// WebSocket server and a Redis client. Those stay in the one sub-package that wraps each.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/callproof/callproof/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v%s", err, stderr(err))
	}
	heavy := map[string]string{ // dependency -> the only sub-package allowed to pull it in
		"github.com/go-jose/go-jose/v4": mod + "sessions/token",
		"github.com/gorilla/websocket":  mod + "sessions/agent",
		"github.com/redis/go-redis/v9":  mod + "sessions/redis",
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		checked++
		for _, d := range deps {
			if strings.HasPrefix(d, mod) && d != mod+"sessions" && !strings.HasPrefix(d, mod+"sessions/") {
				t.Errorf("%s depends on %s: sessions must not import other project packages "+
					"(ivr depends on sessions; importing ivr, kba, media or prompts would cycle or couple state to the flow)", pkg, d)
			}
			if pkg == mod+"sessions" && strings.HasPrefix(d, mod+"sessions/") {
				t.Errorf("%s depends on %s: the sessions root holds only types and the in-memory store; "+
					"its sub-packages import it, never the other way round", pkg, d)
			}
			for h, owner := range heavy {
				if d != h && !strings.HasPrefix(d, h+"/") {
					continue
				}
				if pkg == owner || strings.HasPrefix(pkg, owner+"/") {
					continue
				}
				t.Errorf("%s depends on %s: heavy dependencies stay in %s, so that the root "+
					"(and whoever imports only its interfaces) stays light", pkg, d, owner)
			}
		}
	}
	if checked == 0 {
		t.Fatal("go list listed no packages")
	}
}

// TestGoRedisOnlyInSessionsRedis keeps the Redis client behind one adapter in the whole
// module: every other package (cmd included) talks to Redis through sessions' interfaces and
// sessions/redis.Open, so swapping or upgrading the client touches one directory. Tests count
// too: a test that needs Redis goes through sessions/redis (or its redistest kit).
func TestGoRedisOnlyInSessionsRedis(t *testing.T) {
	const mod = "github.com/callproof/callproof"
	const owner = mod + "/sessions/redis"
	const client = "github.com/redis/go-redis/v9"
	out, err := exec.Command("go", "list", "-e", "-f",
		`{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}`,
		mod+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v%s", err, stderr(err))
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] == owner {
			continue
		}
		for _, imp := range fields[1:] {
			if imp == client || strings.HasPrefix(imp, client+"/") {
				t.Errorf("%s imports %s: only %s may; use its Store through sessions' interfaces", fields[0], imp, owner)
			}
		}
	}
}

func stderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return "\n" + string(ee.Stderr)
	}
	return ""
}
