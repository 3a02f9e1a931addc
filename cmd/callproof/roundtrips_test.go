package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callproof/callproof/sessions/redis"
	"github.com/callproof/callproof/sessions/redis/redistest"
)

// redisNode starts a node on a private Redis and counts its round trips.
func redisNode(t testing.TB) (*node, *redis.RoundTrips) {
	srv := redistest.Start(t)
	n := startNode(t, func(c *Config) { c.Redis = srv.URL() })
	return n, n.app.redis.CountRoundTrips()
}

// The number of Redis round trips one verified call costs, by command: a regression guard
// on the count (not on time). Background work of the node (the agent feed's catch-up, the
// audit stream's forwarder) is counted too, so the figure is what a node really sends per
// call.
func TestRedisRoundTripsPerVerification(t *testing.T) {
	n, rt := redisNode(t)
	if err, out := n.callCLI(t, "--customer", "cus_ada"); err != nil { // load the scripts once
		t.Fatalf("call: %v\n%s", err, out)
	}
	rt.Reset()
	const calls = 5
	for range calls {
		if err, out := n.callCLI(t, "--customer", "cus_ada"); err != nil {
			t.Fatalf("call: %v\n%s", err, out)
		}
	}
	total, by := rt.Total()
	per := float64(total) / calls
	t.Logf("Redis round trips per verified call: %.1f (%d over %d calls):%s", per, total, calls, by)
	if per > 40 {
		t.Errorf("%.1f Redis round trips per verified call, want at most 40:%s", per, by)
	}
}

// BenchmarkVerifiedCallRedis places verified calls (fast mode, digit events) against a node on
// Redis and reports the round trips per call beside the time.
func BenchmarkVerifiedCallRedis(b *testing.B) {
	n, rt := redisNode(b)
	if err, out := n.callCLI(b, "--customer", "cus_ada"); err != nil {
		b.Fatalf("call: %v\n%s", err, out)
	}
	rt.Reset()
	calls := 0
	for b.Loop() {
		if err, out := n.callCLI(b, "--customer", "cus_ada"); err != nil {
			b.Fatalf("call: %v\n%s", err, out)
		}
		calls++
	}
	total, _ := rt.Total()
	b.ReportMetric(float64(total)/float64(calls), "roundtrips/op")
}

// With Redis, passcode state lives there: an authorized agent's call is verified with a
// passcode sent and checked through it, and a second call for the same account right after,
// on another node, is held to the same resend gap rather than getting a fresh code.
func TestPasscodesSharedThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	first := t.TempDir()
	shared := func(c *Config) {
		c.Redis = srv.URL()
		if c.Data != first {
			copyKeys(t, first, c.Data)
		}
	}
	a := startNode(t, func(c *Config) { c.Data = first; shared(c) })
	b := startNode(t, shared)
	err, out := a.callCLI(t, "--customer", "cus_ada", "--request", "delete", "--answers", "agent_menu=2")
	if err != nil || !strings.Contains(out, "outcome: verified") || !strings.Contains(out, "prompt ask_otp") {
		t.Fatalf("passcode call on A: %v\n%s", err, out)
	}
	keys := redisKeys(t, srv.Addr, "*otp:*")
	if len(keys) != 1 {
		t.Fatalf("passcode records in Redis: %v, want one", keys)
	}
	// Within the resend gap no second code goes out, whichever node takes the call: the call
	// on B cannot pass the passcode step.
	err, out = b.callCLI(t, "--customer", "cus_ada", "--request", "delete", "--answers", "agent_menu=2")
	if err == nil || strings.Contains(out, "outcome: verified") {
		t.Fatalf("a second passcode within the resend gap on B was accepted:\n%s", out)
	}
	if testing.Verbose() {
		t.Logf("second call on B:\n%s", out)
	}
}

// copyKeys gives a node the deployment's shared keys from the first node's data directory.
func copyKeys(t testing.TB, from, to string) {
	t.Helper()
	for _, name := range []string{"server-key", "signing-key.pem"} {
		if b, err := os.ReadFile(filepath.Join(from, name)); err == nil {
			if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// redisKeys lists the keys matching pattern with redis-cli.
func redisKeys(t testing.TB, addr, pattern string) []string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("redis-cli", "-h", host, "-p", port, "--raw", "KEYS", pattern).Output()
	if err != nil {
		t.Fatalf("redis-cli KEYS: %v", err)
	}
	return strings.Fields(string(out))
}
