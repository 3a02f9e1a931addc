package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callproof/callproof/sessions/redis/redistest"
)

// roundTrips is a go-redis hook that counts what a node sends to Redis: each command sent on
// its own is one round trip, and so is each pipeline (MULTI/EXEC included) however many
// commands it carries. It records command names only, never arguments.
type roundTrips struct {
	mu    sync.Mutex
	total int
	by    map[string]int
}

func (r *roundTrips) add(name string) {
	r.mu.Lock()
	r.total++
	r.by[name]++
	r.mu.Unlock()
}

func (r *roundTrips) reset() {
	r.mu.Lock()
	r.total, r.by = 0, map[string]int{}
	r.mu.Unlock()
}

func (r *roundTrips) snapshot() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.by))
	for n := range r.by {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, " %s=%d", n, r.by[n])
	}
	return r.total, b.String()
}

func (r *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.add(strings.ToLower(cmd.Name()))
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		names := make([]string, 0, len(cmds))
		for _, c := range cmds {
			if n := strings.ToLower(c.Name()); n != "multi" && n != "exec" {
				names = append(names, n)
			}
		}
		r.add("pipeline(" + strings.Join(names, ",") + ")")
		return next(ctx, cmds)
	}
}

// redisNode starts a node on a private Redis and counts its round trips.
func redisNode(t testing.TB) (*node, *roundTrips) {
	srv := redistest.Start(t)
	n := startNode(t, func(c *Config) { c.Redis = srv.URL() })
	rt := &roundTrips{by: map[string]int{}}
	n.app.redis.AddHook(rt)
	return n, rt
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
	rt.reset()
	const calls = 5
	for range calls {
		if err, out := n.callCLI(t, "--customer", "cus_ada"); err != nil {
			t.Fatalf("call: %v\n%s", err, out)
		}
	}
	total, by := rt.snapshot()
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
	rt.reset()
	calls := 0
	for b.Loop() {
		if err, out := n.callCLI(b, "--customer", "cus_ada"); err != nil {
			b.Fatalf("call: %v\n%s", err, out)
		}
		calls++
	}
	total, _ := rt.snapshot()
	b.ReportMetric(float64(total)/float64(calls), "roundtrips/op")
}
