package main

import (
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
