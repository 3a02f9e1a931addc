package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// Defaults for Handler options.
const (
	DefaultReadLimit        = 4 << 10
	DefaultSendQueue        = 256
	DefaultWriteTimeout     = 10 * time.Second
	DefaultPingInterval     = 30 * time.Second
	DefaultPongTimeout      = 60 * time.Second
	DefaultCloseGrace       = time.Second
	DefaultMaxSubscriptions = 64
)

type config struct {
	origins          map[string]bool
	readLimit        int64
	sendQueue        int
	writeTimeout     time.Duration
	pingInterval     time.Duration
	pongTimeout      time.Duration
	closeGrace       time.Duration
	maxSubscriptions int
}

// Option configures a Handler.
type Option func(*config)

// WithAllowedOrigins lets browser pages from these origins ("https://crm.example.com")
// connect besides the server's own origin. Requests without an Origin header (non-browser
// clients) are always allowed; they still need an agent key.
func WithAllowedOrigins(origins ...string) Option {
	return func(c *config) {
		for _, o := range origins {
			if n, ok := normalizeOrigin(o); ok {
				c.origins[n] = true
			}
		}
	}
}

// WithReadLimit caps one client message (default DefaultReadLimit); larger closes with 1009.
func WithReadLimit(n int64) Option {
	return func(c *config) {
		if n > 0 {
			c.readLimit = n
		}
	}
}

// WithSendQueue sets how many live messages may wait for one agent (default
// DefaultSendQueue) before it is disconnected as too slow.
func WithSendQueue(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.sendQueue = n
		}
	}
}

// WithWriteTimeout bounds one write to an agent (default DefaultWriteTimeout).
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.writeTimeout = d
		}
	}
}

// WithKeepalive sets the ping interval and how long to wait for any frame (a pong at least)
// before the connection is considered dead (defaults 30s and 60s). pong must exceed ping.
func WithKeepalive(ping, pong time.Duration) Option {
	return func(c *config) {
		if ping > 0 && pong > ping {
			c.pingInterval, c.pongTimeout = ping, pong
		}
	}
}

// WithCloseGrace bounds how long a closing connection waits for the agent's close reply
// (default DefaultCloseGrace).
func WithCloseGrace(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.closeGrace = d
		}
	}
}

// WithMaxSubscriptions caps the calls one connection subscribes to individually (default
// DefaultMaxSubscriptions).
func WithMaxSubscriptions(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxSubscriptions = n
		}
	}
}

// Handler serves GET /v1/agent. keys are the agent keys accepted (empty strings are
// ignored; with none, every request is refused). The key is checked before the upgrade:
// missing or wrong gives 401 with WWW-Authenticate: Bearer, a foreign Origin 403, a closed
// hub 503. A Bearer header takes precedence over the query parameter. The query form puts the key in the URL, so keep it out of access logs.
func (h *Hub) Handler(keys []string, opts ...Option) http.Handler {
	cfg := config{
		origins:          map[string]bool{},
		readLimit:        DefaultReadLimit,
		sendQueue:        DefaultSendQueue,
		writeTimeout:     DefaultWriteTimeout,
		pingInterval:     DefaultPingInterval,
		pongTimeout:      DefaultPongTimeout,
		closeGrace:       DefaultCloseGrace,
		maxSubscriptions: DefaultMaxSubscriptions,
	}
	for _, o := range opts {
		o(&cfg)
	}
	hd := &handler{hub: h, cfg: cfg}
	for _, k := range keys {
		if k != "" {
			hd.keys = append(hd.keys, sha256.Sum256([]byte(k)))
		}
	}
	if len(hd.keys) == 0 {
		h.log.Warn("agent endpoint has no keys: every connection will be refused")
	}
	hd.up = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  4096,
		CheckOrigin:      hd.checkOrigin,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			http.Error(w, http.StatusText(status)+": "+reason.Error(), status)
		},
	}
	return hd
}

type handler struct {
	hub  *Hub
	cfg  config
	keys [][sha256.Size]byte
	up   websocket.Upgrader
}

func (hd *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !hd.authorized(r) {
		hd.hub.log.Info("agent connection refused: bad or missing key", zap.String("remote", r.RemoteAddr))
		w.Header().Set("WWW-Authenticate", `Bearer realm="callproof-agent"`)
		http.Error(w, "unauthorized: agent key required", http.StatusUnauthorized)
		return
	}
	if !hd.hub.enter() {
		http.Error(w, "agent hub shutting down", http.StatusServiceUnavailable)
		return
	}
	defer hd.hub.wg.Done()
	ws, err := hd.up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader replied (400, 403, 405...)
	}
	c := newConn(hd.hub, ws, &hd.cfg, r.RemoteAddr)
	hd.hub.serve(c)
}

// authorized compares the presented key with every configured key in constant time. Keys
// are compared as SHA-256 digests so that neither length nor content leaks through timing.
func (hd *handler) authorized(r *http.Request) bool {
	presented := ""
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, rest, ok := strings.Cut(auth, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			presented = strings.TrimSpace(rest)
		}
	}
	if presented == "" {
		presented = r.URL.Query().Get("access_token")
	}
	if presented == "" {
		return false
	}
	sum := sha256.Sum256([]byte(presented))
	match := 0
	for i := range hd.keys {
		match |= subtle.ConstantTimeCompare(sum[:], hd.keys[i][:])
	}
	return match == 1
}

// checkOrigin allows requests without Origin (non-browser clients), same-origin requests and
// origins on the allow-list.
func (hd *handler) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	n, ok := normalizeOrigin(origin)
	return ok && hd.cfg.origins[n]
}

func normalizeOrigin(o string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", false
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), true
}
