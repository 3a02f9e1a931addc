package webrtc

import (
	"fmt"
	"strings"

	"github.com/pion/logging"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// pionLogs adapts zap to pion's logging.LoggerFactory. pion's scopes ("ice", "dtls", "pc",
// ...) become logger names under "pion". pion reports every state change at Info; those are
// per-call chatter, so Trace, Debug and Info all go to zap's Debug level, and only Warn and
// Error keep their level, except the warnings pion gives on every ordinary call set-up and
// tear-down (benignWarning), which go to Debug too. Messages are formatted only when needed.
type pionLogs struct{ z *zap.Logger }

var _ logging.LoggerFactory = pionLogs{}

// NewLogger implements logging.LoggerFactory.
func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{z: f.z.Named(scope).WithOptions(zap.AddCallerSkip(2))}
}

type pionLogger struct{ z *zap.Logger }

var _ logging.LeveledLogger = pionLogger{}

func (l pionLogger) log(lvl zapcore.Level, msg string) {
	if ce := l.z.Check(lvl, msg); ce != nil {
		ce.Write()
	}
}

func (l pionLogger) logf(lvl zapcore.Level, format string, args ...any) {
	if l.z.Core().Enabled(lvl) {
		l.log(lvl, fmt.Sprintf(format, args...))
	}
}

// warn logs a pion warning, at Debug when it is one pion gives on every ordinary call.
func (l pionLogger) warn(msg string) {
	if benignWarning(msg) {
		l.log(zapcore.DebugLevel, msg)
		return
	}
	l.log(zapcore.WarnLevel, msg)
}

// benignWarning recognises the warnings pion v4 logs on every call, or on every call that ends
// before it connected: pings before the peer's candidates are known, and its connection
// manager and undeclared-stream reader noticing that the connection closed.
func benignWarning(msg string) bool {
	return strings.HasPrefix(msg, "Failed to ping without candidate pairs") ||
		strings.HasSuffix(msg, "stream is already closed") ||
		strings.HasSuffix(msg, "connecting canceled by caller") ||
		strings.HasSuffix(msg, "the DTLS transport has not started yet") ||
		strings.HasPrefix(msg, "Could not determine PayloadType") && strings.HasSuffix(msg, "(EOF)")
}

func (l pionLogger) Trace(msg string)                  { l.log(zapcore.DebugLevel, msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.logf(zapcore.DebugLevel, format, args...) }
func (l pionLogger) Debug(msg string)                  { l.log(zapcore.DebugLevel, msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.logf(zapcore.DebugLevel, format, args...) }
func (l pionLogger) Info(msg string)                   { l.log(zapcore.DebugLevel, msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.logf(zapcore.DebugLevel, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.warn(msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	if l.z.Core().Enabled(zapcore.DebugLevel) || l.z.Core().Enabled(zapcore.WarnLevel) {
		l.warn(fmt.Sprintf(format, args...))
	}
}
func (l pionLogger) Error(msg string)                  { l.log(zapcore.ErrorLevel, msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.logf(zapcore.ErrorLevel, format, args...) }
