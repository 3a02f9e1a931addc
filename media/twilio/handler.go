package twilio

import (
	"context"
	"net/http"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsjson"
)

// Handler serves GET /v1/twilio: one Twilio media stream per request, each run as a Leg.
type Handler struct {
	cfg Config
	a   *wsjson.Acceptor
}

// NewHandler returns the stream handler. For every stream that starts, serve runs on the
// stream's own goroutine with the leg and a context cancelled when the stream ends; the
// request's handler returns once the stream is running (Wait waits for the streams). cfg
// should have passed Validate: an invalid config makes every request fail with 500. A nil log
// means zap.NewNop().
func NewHandler(cfg Config, serve func(ctx context.Context, leg media.Leg), log *zap.Logger) *Handler {
	c := cfg.withDefaults()
	sc := wsjson.ServeConfig{Name: "twilio", StartTimeout: c.StartTimeout, Serve: serve}
	return &Handler{cfg: c, a: wsjson.NewAcceptor(sc, cfg.Validate(), log)}
}

// Wait waits until every stream the handler accepted has ended: ServeHTTP returns once a
// stream is running, and the stream goes on on its own goroutine.
func (h *Handler) Wait() { h.a.Wait() }

// ServeHTTP checks X-Twilio-Signature (403 before any upgrade when it does not match), upgrades,
// waits for "connected" and "start", then runs the serve function on the leg.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.a.Refused(w) {
		return
	}
	if h.cfg.AuthToken != "" {
		u := StreamURL(h.cfg.PublicURL, r.Host)
		if !ValidSignature(h.cfg.AuthToken, u, nil, r.Header.Get("X-Twilio-Signature")) {
			h.a.Log().Warn("twilio stream refused: bad signature", zap.String("url", u),
				zap.String("remote", r.RemoteAddr), zap.Bool("signed", r.Header.Get("X-Twilio-Signature") != ""))
			http.Error(w, "invalid X-Twilio-Signature", http.StatusForbidden)
			return
		}
	}
	h.a.Accept(w, r, func(conn *websocket.Conn, cancel context.CancelFunc) (*wsjson.Stream, media.Leg) {
		l := newLeg(conn, &h.cfg, cancel)
		return l.s, l
	})
}
