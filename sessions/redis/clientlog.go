package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// RouteClientLogs sends go-redis's own messages (connection pool dial failures, Sentinel
// master changes) to log at warn level instead of plain lines on stderr. It is process-wide,
// as go-redis's logger is. Those messages carry addresses and errors, never keys or values.
func RouteClientLogs(log *zap.Logger) { goredis.SetLogger(clientLogger{log}) }

type clientLogger struct{ log *zap.Logger }

func (c clientLogger) Printf(_ context.Context, format string, v ...any) {
	c.log.Warn(fmt.Sprintf(format, v...))
}
