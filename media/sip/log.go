package sip

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
)

// sipgo logs through log/slog. newSlog routes its records into the injected zap logger
// (zapslog), named "sipgo", with two changes:
//
//   - Levels go down one step (Error to Warn, Warn to Info, Info to Debug): what sipgo calls an
//     error is almost always a peer's (a message it could not parse, a transaction that timed
//     out), and our own log lines say when a call failed because of us.
//   - Attributes that can hold a raw message ("data", which sipgo logs when a message does not
//     parse; "body") are replaced by their length: a raw INFO carries the digit the caller
//     pressed, a raw REFER the token. The error of such a record is replaced too: sipgo's parser
//     errors quote the peer's bytes (the start line, a From header with the caller's number).
//     Any other value is cut to maxAttr bytes, so that a peer cannot make one line huge.
//
// No global logger is set: each UA, transport, transaction layer, server and client gets this
// logger through its options. sipgo starts goroutines that cannot be waited for and that may
// log after their UA was closed; closing the returned gate (once the UA is closed) drops
// their records, so nothing is logged through an injected logger after its owner returned.
func newSlog(log *zap.Logger) (*slog.Logger, *logGate) {
	g := &logGate{}
	return slog.New(&redactHandler{h: zapslog.NewHandler(log.Core(), zapslog.WithName("sipgo")), gate: g}), g
}

// logGate switches a logger off for good; close waits for records being written.
type logGate struct {
	mu  sync.RWMutex
	off bool
}

func (g *logGate) close() {
	g.mu.Lock()
	g.off = true
	g.mu.Unlock()
}

type redactHandler struct {
	h    slog.Handler
	gate *logGate
}

func demote(l slog.Level) slog.Level {
	switch {
	case l >= slog.LevelError:
		return slog.LevelWarn
	case l >= slog.LevelWarn:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

func (r *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return r.h.Enabled(ctx, demote(l))
}

func (r *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	r.gate.mu.RLock()
	defer r.gate.mu.RUnlock()
	if r.gate.off {
		return nil
	}
	out := slog.NewRecord(rec.Time, demote(rec.Level), rec.Message, rec.PC)
	parseFailure := rec.Message == "failed to parse"
	rec.Attrs(func(a slog.Attr) bool {
		if parseFailure && a.Key == "error" {
			a = slog.String(a.Key, parseFailureReason(a.Value.Any()))
		}
		out.AddAttrs(redactAttr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = redactAttr(a)
	}
	return &redactHandler{h: r.h.WithAttrs(clean), gate: r.gate}
}

func (r *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{h: r.h.WithGroup(name), gate: r.gate}
}

// maxAttr bounds the logged length of a sipgo attribute's value.
const maxAttr = 256

func redactAttr(a slog.Attr) slog.Attr {
	switch a.Key {
	case "data", "body":
		return slog.Int(a.Key+"_len", len(a.Value.String()))
	}
	switch a.Value.Kind() {
	case slog.KindString, slog.KindAny:
		if s := a.Value.String(); len(s) > maxAttr {
			return slog.String(a.Key, strings.ToValidUTF8(s[:maxAttr], "")+"…")
		}
	}
	return a
}

// parseFailureReason says why a message did not parse without quoting it: the parser's own
// sentinel errors are kept, any other error (they quote the peer's bytes) is withheld.
func parseFailureReason(v any) string {
	if err, ok := v.(error); ok {
		for _, known := range []error{sip.ErrMessageTooLarge, sip.ErrParseLineNoCRLF, sip.ErrParseEOF, sip.ErrParseReadBodyIncomplete} {
			if errors.Is(err, known) {
				return known.Error()
			}
		}
	}
	return "not a SIP message (the parser's detail quotes the peer's bytes: withheld)"
}
