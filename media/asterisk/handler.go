package asterisk

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
)

// Handler serves GET /v1/asterisk: one chan_websocket connection per request, each run as a
// Leg.
type Handler struct {
	cfg      Config
	err      error // Validate's verdict on the config
	serve    func(ctx context.Context, leg media.Leg)
	log      *zap.Logger
	upgrader websocket.Upgrader
	user     [sha256.Size]byte
	pass     [sha256.Size]byte
}

// NewHandler returns the chan_websocket handler. For every connection whose MEDIA_START is
// accepted, serve runs in the request's goroutine with the leg and a context cancelled when the
// call ends; the handler returns once serve has returned and the leg's goroutines have
// finished. cfg should have passed Validate: an invalid config makes every request fail with
// 500. A nil log means zap.NewNop().
func NewHandler(cfg Config, serve func(ctx context.Context, leg media.Leg), log *zap.Logger) *Handler {
	if log == nil {
		log = zap.NewNop()
	}
	return &Handler{
		cfg:   cfg.withDefaults(),
		err:   cfg.Validate(),
		serve: serve,
		log:   log,
		user:  sha256.Sum256([]byte(cfg.Username)),
		pass:  sha256.Sum256([]byte(cfg.Password)),
		upgrader: websocket.Upgrader{
			HandshakeTimeout: 10 * time.Second,
			ReadBufferSize:   4096,
			WriteBufferSize:  4096,
		},
	}
}

// ServeHTTP checks the address (403) and the credentials (401) before any upgrade, reads the
// caller metadata from the query (400 when malformed), upgrades, waits for MEDIA_START, then
// runs the serve function on the leg.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.err != nil {
		h.log.Error("asterisk connection refused: invalid config", zap.Error(h.err))
		http.Error(w, "handler misconfigured", http.StatusInternalServerError)
		return
	}
	if !h.allowed(r.RemoteAddr) {
		h.log.Warn("asterisk connection refused: address not in allow-from", zap.String("remote", r.RemoteAddr))
		http.Error(w, "address not allowed", http.StatusForbidden)
		return
	}
	if !h.authorized(r) {
		h.log.Warn("asterisk connection refused: bad credentials", zap.String("remote", r.RemoteAddr))
		w.Header().Set("WWW-Authenticate", `Basic realm="callproof", charset="UTF-8"`)
		http.Error(w, "credentials required", http.StatusUnauthorized)
		return
	}
	meta, err := queryMeta(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Echo the first subprotocol Asterisk asks for (websocket_client.conf protocols): a client
	// that asked for one may abort when none is chosen (telephony-protocols §8, pitfall 13).
	var hdr http.Header
	if p := websocket.Subprotocols(r); len(p) > 0 {
		hdr = http.Header{"Sec-Websocket-Protocol": {p[0]}}
	}
	conn, err := h.upgrader.Upgrade(w, r, hdr)
	if err != nil {
		h.log.Debug("asterisk connection: upgrade failed", zap.Error(err)) // the upgrader answered
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	l := newLeg(conn, &h.cfg, meta, h.log, cancel)
	go l.readLoop()
	go l.writeLoop()
	began := time.Now()
	defer l.Close()

	timer := time.NewTimer(h.cfg.StartTimeout)
	select {
	case <-l.started:
	case <-l.endCh:
	case <-timer.C:
		l.fail(violation(closePolicy, "no MEDIA_START within %s", h.cfg.StartTimeout))
	}
	timer.Stop()
	st := l.Start()
	if st == nil {
		<-l.endCh
		_ = l.Close()
		h.log.Warn("asterisk connection ended before MEDIA_START", zap.String("remote", r.RemoteAddr),
			zap.Error(l.rx.Err()))
		return
	}
	log := h.log.With(zap.String("call", st.CallID), zap.String("connection", st.StreamID))
	l.log.Store(log)
	log.Info("asterisk call started", zap.String("remote", r.RemoteAddr), zap.String("format", l.codec.name),
		zap.String("control", map[ctlFormat]string{formatPlain: "plain-text", formatJSON: "json"}[l.ctl]),
		zap.Int("optimal_frame_size", l.frameSize), zap.String("caller", media.MaskPhone(st.From)),
		zap.String("to", media.MaskPhone(st.To)), zap.String("verstat", st.Verstat))
	defer func() {
		_ = l.Close()
		s := l.Stats()
		l.mu.Lock()
		code, text := l.closeCode, l.closeText
		l.mu.Unlock()
		level := zap.InfoLevel
		if code != websocket.CloseNormalClosure && code != websocket.CloseGoingAway {
			level = zap.WarnLevel
		}
		log.Log(level, "asterisk call ended", zap.Duration("duration", time.Since(began)),
			zap.Int("close_code", code), zap.String("close_reason", text), zap.NamedError("reason", l.rx.Err()),
			zap.Uint64("frames_in", s.FramesIn), zap.Uint64("early", s.Early),
			zap.Uint64("messages_out", s.MessagesOut), zap.Uint64("bytes_out", s.BytesOut),
			zap.Uint64("prompts", s.Prompts), zap.Uint64("marks", s.Marks), zap.Uint64("stale", s.Stale),
			zap.Uint64("clears", s.Clears), zap.Uint64("drained", s.Drained), zap.Uint64("xoffs", s.XOFFs),
			zap.Uint64("errors", s.Errors), zap.Uint64("drops", s.Drops))
	}()
	if h.serve != nil {
		h.serve(ctx, l)
	}
	_ = l.Hangup("done")
}

func (h *Handler) allowed(remote string) bool {
	if len(h.cfg.AllowFrom) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range h.cfg.AllowFrom {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// authorized checks HTTP Basic credentials in constant time (both fields always compared).
func (h *Handler) authorized(r *http.Request) bool {
	if h.cfg.Username == "" {
		return true
	}
	u, p, ok := r.BasicAuth()
	if !ok {
		return false
	}
	uh, ph := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
	return subtle.ConstantTimeCompare(uh[:], h.user[:])&subtle.ConstantTimeCompare(ph[:], h.pass[:]) == 1
}

// queryMeta reads the caller metadata the dialplan passes with Dial's v() option:
// from, to, verstat, request, lang and account. Other parameters are ignored. Messages name
// the parameter, never its value.
func queryMeta(r *http.Request) (media.Start, error) {
	st := media.Start{Params: map[string]string{}}
	q := r.URL.Query()
	for key, vals := range q {
		if !metaKey(key) {
			continue
		}
		if len(vals) != 1 || !validMeta(vals[0]) {
			return st, fmt.Errorf("query parameter %s: want one value of at most %d printable characters", key, maxVar)
		}
		if vals[0] != "" {
			setMeta(&st, key, vals[0])
		}
	}
	return st, nil
}
