package wsaudio

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
)

// HandlerConfig is what a platform adapter passes to NewHandler.
type HandlerConfig struct {
	// Leg configures every leg.
	Leg Config
	// Subprotocol, when set, must be offered by the client and is echoed in the upgrade
	// response (telephony-protocols §8, pitfall 13); a request without it gets 400.
	Subprotocol string
	// Authorize checks a request before the upgrade; an error means 401. nil accepts all.
	Authorize func(r *http.Request) error
	// Realm, when set, is sent in a WWW-Authenticate: Basic challenge with a 401.
	Realm string
	// Invalid is the platform config's Validate verdict: when not nil every request gets 500.
	Invalid error
}

// Handler serves one platform's WebSocket path: each request is authorised, upgraded and run
// as a Leg.
type Handler struct {
	hc       HandlerConfig
	serve    func(ctx context.Context, leg media.Leg)
	log      *zap.Logger
	upgrader websocket.Upgrader
}

// NewHandler returns a handler for hc. For every stream whose metadata arrives, serve runs in
// the request's goroutine with the leg and a context cancelled when the leg ends; the handler
// returns once serve has returned and the leg's goroutines have finished. A nil log means
// zap.NewNop().
func NewHandler(hc HandlerConfig, serve func(ctx context.Context, leg media.Leg), log *zap.Logger) *Handler {
	if log == nil {
		log = zap.NewNop()
	}
	h := &Handler{hc: hc, serve: serve, log: log}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		// Platforms are servers, not browsers, and authenticate with credentials. libwebsockets
		// (mod_audio_fork, jambonz) sends "Origin: <host>" without a scheme, which gorilla's
		// same-origin check would refuse.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	if hc.Subprotocol != "" {
		h.upgrader.Subprotocols = []string{hc.Subprotocol}
	}
	return h
}

// ServeHTTP refuses a misconfigured handler (500), a request without valid credentials (401)
// or without the subprotocol (400), before any upgrade; then it runs the stream.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := h.hc.Leg.Transport
	if h.hc.Invalid != nil {
		h.log.Error(t+" stream refused: invalid config", zap.Error(h.hc.Invalid))
		http.Error(w, "stream handler misconfigured", http.StatusInternalServerError)
		return
	}
	if h.hc.Authorize != nil {
		if err := h.hc.Authorize(r); err != nil {
			h.log.Warn(t+" stream refused: unauthorized", zap.String("remote", r.RemoteAddr),
				zap.Bool("credentials", r.Header.Get("Authorization") != ""))
			if h.hc.Realm != "" {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q, charset=\"UTF-8\"", h.hc.Realm))
			}
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	if p := h.hc.Subprotocol; p != "" && !offers(r, p) {
		h.log.Warn(t+" stream refused: subprotocol not offered", zap.String("remote", r.RemoteAddr),
			zap.String("want", p), zap.Strings("offered", websocket.Subprotocols(r)))
		http.Error(w, "WebSocket subprotocol "+p+" required", http.StatusBadRequest)
		return
	}
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		h.log.Debug(t+" stream: upgrade failed", zap.Error(err)) // the upgrader answered
		return
	}
	Run(r.Context(), conn, &h.hc.Leg, h.serve, h.log.With(zap.String("remote", r.RemoteAddr)))
}

func offers(r *http.Request, proto string) bool {
	for _, p := range websocket.Subprotocols(r) {
		if p == proto {
			return true
		}
	}
	return false
}

// Run serves one upgraded connection as a Leg: it waits for the metadata (closing with 1008
// after cfg.StartTimeout), logs the start, runs serve with the leg and a context cancelled when
// the leg ends, then hangs up and logs the end with the leg's counters. It returns when the
// leg's goroutines have finished.
func Run(ctx context.Context, conn *websocket.Conn, cfg *Config, serve func(context.Context, media.Leg), log *zap.Logger) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l := newLeg(conn, cfg, log, cancel)
	go l.readLoop()
	go l.writeLoop()
	began := time.Now()
	defer l.Close()

	timer := time.NewTimer(cfg.StartTimeout)
	select {
	case <-l.started:
	case <-l.endCh:
	case <-timer.C:
		if l.Start() == nil {
			l.fail(Violate(ClosePolicy, "no metadata message within %s", cfg.StartTimeout))
		}
	}
	timer.Stop()
	st := l.Start()
	if st == nil {
		l.Close()
		code, text := l.CloseStatus()
		log.Warn(cfg.Transport+" stream ended before its metadata", zap.Int("close_code", code),
			zap.String("close_reason", text), zap.NamedError("reason", l.rx.Err()))
		return
	}
	in, out := l.Rates()
	log = log.With(zap.String("call", st.CallID))
	log.Info(cfg.Transport+" stream started", zap.String("caller", media.MaskPhone(st.From)),
		zap.String("to", media.MaskPhone(st.To)), zap.String("verstat", st.Verstat),
		zap.Int("rate", in), zap.Int("play_rate", out), zap.Bool("native_marks", cfg.Output.Mark != nil))
	defer func() {
		l.Close()
		s := l.Stats()
		code, text := l.CloseStatus()
		lvl := zap.InfoLevel
		if errors.Is(l.rx.Err(), media.ErrProtocol) {
			lvl = zap.WarnLevel // the platform broke the protocol
		}
		log.Log(lvl, cfg.Transport+" stream ended", zap.Duration("duration", time.Since(began)),
			zap.Int("close_code", code), zap.String("close_reason", text), zap.NamedError("reason", l.rx.Err()),
			zap.Uint64("frames_in", s.FramesIn), zap.Uint64("frames_out", s.FramesOut),
			zap.Uint64("marks_out", s.MarksOut), zap.Uint64("marks_in", s.MarksIn),
			zap.Uint64("late_acks", s.LateAcks), zap.Uint64("clears", s.Clears), zap.Uint64("drops", s.Drops))
	}()
	if serve != nil {
		serve(ctx, l)
	}
	_ = l.Hangup("done")
}

// Equal compares two secrets in constant time (also in their lengths: it compares hashes).
func Equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// CheckBasic returns nil when r carries HTTP Basic credentials user and pass (RFC 7617), else
// ErrAuth. Both comparisons always run, in constant time.
func CheckBasic(r *http.Request, user, pass string) error {
	u, p, ok := r.BasicAuth()
	okUser := Equal(u, user)
	okPass := Equal(p, pass)
	if !ok || !okUser || !okPass {
		return ErrAuth
	}
	return nil
}

// CheckToken returns nil when r carries token as "Authorization: Bearer <token>", as the last
// segment of its path, or as its "token" query parameter, else ErrAuth. Comparisons are
// constant-time.
func CheckToken(r *http.Request, token string) error {
	okHeader, okPath, okQuery := false, false, false
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		okHeader = Equal(strings.TrimSpace(h[7:]), token)
	}
	p := r.URL.Path
	okPath = Equal(p[strings.LastIndexByte(p, '/')+1:], token)
	if q := r.URL.Query().Get("token"); q != "" {
		okQuery = Equal(q, token)
	}
	if okHeader || okPath || okQuery {
		return nil
	}
	return ErrAuth
}
