package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// go-redis's dial failures reach the injected logger, not stderr.
func TestRouteClientLogs(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	RouteClientLogs(zap.New(core).Named("redis-client"))
	t.Cleanup(func() { RouteClientLogs(zap.NewNop()) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// A port nothing listens on: the pool logs its failed dials.
	_, _ = Open(ctx, Config{URL: "redis://127.0.0.1:1", DialTimeout: 100 * time.Millisecond}, nil)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range logs.All() {
			if e.LoggerName == "redis-client" && strings.Contains(e.Message, "127.0.0.1:1") {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no go-redis message reached the logger: %v", logs.All())
}
