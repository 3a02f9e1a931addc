package telnyx

import (
	"context"
	"net/http"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsjson"
)

// Handler serves GET /v1/telnyx: one Telnyx media stream per request, each run as a Leg.
type Handler struct {
	cfg Config
	a   *wsjson.Acceptor
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns the stream handler (an http.Handler). For every stream that starts,
// serve runs on the stream's own goroutine with the leg and a context cancelled when the
// stream ends; the request's handler returns once the stream is running (Wait waits for the
// streams). cfg should have passed Validate: an invalid config makes every request fail with
// 500. A nil log means zap.NewNop().
func NewHandler(cfg Config, serve func(ctx context.Context, leg media.Leg), log *zap.Logger) *Handler {
	c := cfg.withDefaults()
	sc := wsjson.ServeConfig{Name: "telnyx", StartTimeout: c.StartTimeout, Serve: serve, Stats: logStats}
	return &Handler{cfg: c, a: wsjson.NewAcceptor(sc, cfg.Validate(), log)}
}

// Wait waits until every stream the handler accepted has ended: ServeHTTP returns once a
// stream is running, and the stream goes on on its own goroutine.
func (h *Handler) Wait() { h.a.Wait() }

// ServeHTTP checks the stream token (401 without one, 403 with a wrong one, before any
// upgrade), upgrades, waits for "start", then runs the serve function on the leg.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.a.Refused(w) {
		return
	}
	if h.cfg.AuthToken != "" {
		switch status := authorize(r, h.cfg.AuthToken); status {
		case http.StatusUnauthorized:
			h.a.Log().Warn("telnyx stream refused: no stream token", zap.String("remote", r.RemoteAddr))
			http.Error(w, "stream token required ("+TokenHeader+")", status)
			return
		case http.StatusForbidden:
			h.a.Log().Warn("telnyx stream refused: wrong stream token", zap.String("remote", r.RemoteAddr))
			http.Error(w, "invalid stream token", status)
			return
		}
	}
	h.a.Accept(w, r, func(conn *websocket.Conn, cancel context.CancelFunc) (*wsjson.Stream, media.Leg) {
		l := newLeg(conn, &h.cfg, cancel)
		return l.s, l
	})
}

// logStats adds the counters only Telnyx legs keep to the end-of-call log line.
func logStats(leg media.Leg) []zap.Field {
	s := leg.(*Leg).Stats()
	return []zap.Field{zap.Uint64("reordered", s.Reordered), zap.Uint64("late", s.Late), zap.Uint64("telnyx_errors", s.Errors)}
}
