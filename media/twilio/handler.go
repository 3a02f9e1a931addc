package twilio

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
)

// Handler serves GET /v1/twilio: one Twilio media stream per request, each run as a Leg.
type Handler struct {
	cfg      Config
	err      error // Validate's verdict on the config
	serve    func(ctx context.Context, leg media.Leg)
	log      *zap.Logger
	upgrader websocket.Upgrader
}

// NewHandler returns the stream handler. For every stream that starts, serve runs in the
// request's goroutine with the leg and a context cancelled when the stream ends; the handler
// returns once serve has returned and the leg's goroutines have finished. cfg should have
// passed Validate: an invalid config makes every request fail with 500. A nil log means
// zap.NewNop().
func NewHandler(cfg Config, serve func(ctx context.Context, leg media.Leg), log *zap.Logger) *Handler {
	if log == nil {
		log = zap.NewNop()
	}
	return &Handler{
		cfg:      cfg.withDefaults(),
		err:      cfg.Validate(),
		serve:    serve,
		log:      log,
		upgrader: newUpgrader(),
	}
}

// writeBufferSize holds a whole one-second media message (10 668 bytes of base64 plus the
// JSON around it), so gorilla/websocket writes each message with one system call and no
// allocation.
const writeBufferSize = 16 << 10

func newUpgrader() websocket.Upgrader {
	return websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  writeBufferSize,
	}
}

// ServeHTTP checks X-Twilio-Signature (403 before any upgrade when it does not match), upgrades,
// waits for "connected" and "start", then runs the serve function on the leg.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.err != nil {
		h.log.Error("twilio stream refused: invalid config", zap.Error(h.err))
		http.Error(w, "stream handler misconfigured", http.StatusInternalServerError)
		return
	}
	if h.cfg.AuthToken != "" {
		u := StreamURL(h.cfg.PublicURL, r.Host)
		if !ValidSignature(h.cfg.AuthToken, u, nil, r.Header.Get("X-Twilio-Signature")) {
			h.log.Warn("twilio stream refused: bad signature", zap.String("url", u),
				zap.String("remote", r.RemoteAddr), zap.Bool("signed", r.Header.Get("X-Twilio-Signature") != ""))
			http.Error(w, "invalid X-Twilio-Signature", http.StatusForbidden)
			return
		}
	}
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		h.log.Debug("twilio stream: upgrade failed", zap.Error(err)) // the upgrader answered
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	l := newLeg(conn, &h.cfg, cancel)
	go l.readLoop()
	go l.writeLoop()
	began := time.Now()
	defer l.Close()

	timer := time.NewTimer(h.cfg.StartTimeout)
	select {
	case <-l.started:
	case <-l.endCh:
	case <-timer.C:
		msg := fmt.Sprintf("no start message within %s", h.cfg.StartTimeout)
		l.fail(violation(closePolicy, "%s", msg))
	}
	timer.Stop()
	st := l.Start()
	if st == nil {
		<-l.endCh
		l.Close()
		h.log.Warn("twilio stream ended before start", zap.String("remote", r.RemoteAddr),
			zap.Error(l.rx.Err()))
		return
	}
	log := h.log.With(zap.String("call", st.CallID), zap.String("stream", st.StreamID))
	log.Info("twilio stream started", zap.String("caller", media.MaskPhone(st.From)),
		zap.String("to", media.MaskPhone(st.To)), zap.String("verstat", st.Verstat))
	defer func() {
		l.Close()
		s := l.Stats()
		l.mu.Lock()
		code, text := l.closeCode, l.closeText
		l.mu.Unlock()
		log.Info("twilio stream ended", zap.Duration("duration", time.Since(began)),
			zap.Int("close_code", code), zap.String("close_reason", text), zap.NamedError("reason", l.rx.Err()),
			zap.Uint64("frames_in", s.FramesIn), zap.Uint64("frames_out", s.FramesOut),
			zap.Uint64("drops", s.Drops), zap.Uint64("marks_out", s.MarksOut),
			zap.Uint64("marks_in", s.MarksIn), zap.Uint64("clears", s.Clears), zap.Uint64("gaps", s.Gaps))
	}()
	if h.serve != nil {
		h.serve(ctx, l)
	}
	_ = l.Hangup("done")
}
