package redis

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// RoundTrips counts what a store sends to Redis, for benchmarks and regression guards: each
// command sent on its own is one round trip, and so is each pipeline (MULTI/EXEC included)
// however many commands it carries. It records command names only, never arguments (they
// hold sealed agent messages and hashed keys).
type RoundTrips struct {
	mu    sync.Mutex
	total int
	by    map[string]int
}

// CountRoundTrips starts counting the store's round trips from now on.
func (s *Store) CountRoundTrips() *RoundTrips {
	rt := &RoundTrips{by: map[string]int{}}
	s.rdb.AddHook(rt)
	return rt
}

// Reset sets the counts back to zero.
func (r *RoundTrips) Reset() {
	r.mu.Lock()
	r.total, r.by = 0, map[string]int{}
	r.mu.Unlock()
}

// Total returns the round trips counted, and the counts by command (pipelines as
// "pipeline(cmd,cmd)") as " name=n" pairs in name order.
func (r *RoundTrips) Total() (int, string) {
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

func (r *RoundTrips) add(name string) {
	r.mu.Lock()
	r.total++
	r.by[name]++
	r.mu.Unlock()
}

// DialHook implements goredis.Hook.
func (r *RoundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

// ProcessHook implements goredis.Hook.
func (r *RoundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.add(strings.ToLower(cmd.Name()))
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements goredis.Hook.
func (r *RoundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
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
