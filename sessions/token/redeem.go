package token

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/callproof/callproof/sessions"
)

// Defaults for RedeemHandler.
const (
	// DefaultRedeemLeeway tolerates clock skew between the node that signed a token and the
	// node that redeems it.
	DefaultRedeemLeeway = 5 * time.Second
	// DefaultRedeemMaxBody bounds the request body.
	DefaultRedeemMaxBody = 16 << 10
)

// Verifier gives the keys a redeemed token may be signed with and the issuer and audience
// it must carry. *Signer implements it (its JWKS lists the verification keys too).
type Verifier interface {
	JWKS() jose.JSONWebKeySet
	Config() Config
}

var _ Verifier = (*Signer)(nil)

type redeemConfig struct {
	leeway  time.Duration
	now     func() time.Time
	log     *zap.Logger
	maxBody int64
}

// RedeemOption configures RedeemHandler.
type RedeemOption func(*redeemConfig)

// WithRedeemLeeway sets the clock skew tolerated on exp, nbf and iat (default
// DefaultRedeemLeeway). The replay record outlives exp by as much.
func WithRedeemLeeway(d time.Duration) RedeemOption {
	return func(c *redeemConfig) {
		if d >= 0 {
			c.leeway = d
		}
	}
}

// WithRedeemClock sets the clock (default time.Now).
func WithRedeemClock(now func() time.Time) RedeemOption {
	return func(c *redeemConfig) {
		if now != nil {
			c.now = now
		}
	}
}

// WithRedeemLogger sets the logger (default none). It logs jti and outcome, never a token.
func WithRedeemLogger(log *zap.Logger) RedeemOption {
	return func(c *redeemConfig) {
		if log != nil {
			c.log = log
		}
	}
}

// WithRedeemMaxBody bounds the request body (default DefaultRedeemMaxBody); larger gets 413.
func WithRedeemMaxBody(n int64) RedeemOption {
	return func(c *redeemConfig) {
		if n > 0 {
			c.maxBody = n
		}
	}
}

// Redemption is the 200 response of POST /v1/tokens/redeem: the token's header kid, its
// registered claims (times in seconds since the epoch, as in the token) and the Callproof
// claims.
type Redemption struct {
	KeyID     string   `json:"kid"`
	Issuer    string   `json:"iss"`
	Audience  []string `json:"aud"`
	IssuedAt  int64    `json:"iat,omitempty"`
	NotBefore int64    `json:"nbf,omitempty"`
	Expiry    int64    `json:"exp"`
	ID        string   `json:"jti"`
	sessions.Claims
}

// RedeemError is the JSON body of every other response: a stable code and a fixed,
// human-readable reason. Neither ever contains the token or any part of it.
type RedeemError struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// Error codes of RedeemError.
const (
	CodeUnauthorized    = "unauthorized"           // 401: no or wrong agent key
	CodeBadRequest      = "bad_request"            // 400: not the JSON object {"token":"..."}
	CodeTooLarge        = "too_large"              // 413
	CodeUnsupportedType = "unsupported_media_type" // 415: not application/json
	CodeMethod          = "method_not_allowed"     // 405
	CodeInvalidToken    = "invalid_token"          // 422: fails Verify
	CodeRedeemed        = "already_redeemed"       // 409: its jti was redeemed before
	CodeUnavailable     = "unavailable"            // 503: the replay store cannot answer
)

// RedeemHandler serves POST /v1/tokens/redeem: an agent desktop or CRM (authenticated with
// an agent key, Authorization: Bearer, compared in constant time; the same keys as
// GET /v1/agent) posts {"token":"..."} as application/json; the token is verified like Verify
// does (alg EdDSA, a kid in v's JWKS, signature, exp, nbf, iat, v's issuer and audience, sub
// and jti) and its jti consumed in replay, atomically across nodes when replay is shared.
//
//	200 Redemption   the first redemption
//	409              the jti was redeemed before (on any node)
//	422              the token does not verify (reason: which check failed)
//	400 / 413 / 415  not the expected JSON object / body too large / not application/json
//	401              missing or wrong agent key (WWW-Authenticate: Bearer)
//	503              the replay store cannot answer: nothing is accepted (fail closed)
//
// The jti is remembered until exp plus the leeway. Responses are never cached.
func RedeemHandler(v Verifier, agentKeys []string, replay sessions.Replay, opts ...RedeemOption) http.Handler {
	cfg := redeemConfig{leeway: DefaultRedeemLeeway, now: time.Now, log: zap.NewNop(), maxBody: DefaultRedeemMaxBody}
	for _, o := range opts {
		o(&cfg)
	}
	h := &redeemer{cfg: cfg, v: v, replay: replay}
	for _, k := range agentKeys {
		if k != "" {
			h.keys = append(h.keys, sha256.Sum256([]byte(k)))
		}
	}
	if len(h.keys) == 0 {
		cfg.log.Warn("token redeem endpoint has no agent keys: every request will be refused")
	}
	return h
}

type redeemer struct {
	cfg    redeemConfig
	v      Verifier
	replay sessions.Replay
	keys   [][sha256.Size]byte
}

func (h *redeemer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reply(w, http.StatusMethodNotAllowed, CodeMethod, "use POST")
		return
	}
	if !h.authorized(r) {
		h.cfg.log.Info("token redeem refused: bad or missing agent key", zap.String("remote", r.RemoteAddr))
		w.Header().Set("WWW-Authenticate", `Bearer realm="callproof-agent"`)
		h.reply(w, http.StatusUnauthorized, CodeUnauthorized, "agent key required")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		h.reply(w, http.StatusUnsupportedMediaType, CodeUnsupportedType, "send application/json")
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, h.cfg.maxBody))
	dec.DisallowUnknownFields()
	var req struct {
		Token *string `json:"token"`
	}
	err := dec.Decode(&req)
	if err == nil {
		if _, err = dec.Token(); err == io.EOF {
			err = nil
		} else if err == nil {
			err = errors.New("trailing data")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.reply(w, http.StatusRequestEntityTooLarge, CodeTooLarge, "request body too large")
		return
	case err != nil:
		h.reply(w, http.StatusBadRequest, CodeBadRequest, `want the JSON object {"token":"..."}`)
		return
	case req.Token == nil || *req.Token == "":
		h.reply(w, http.StatusBadRequest, CodeBadRequest, "token is required")
		return
	}
	cfg := h.v.Config()
	now := h.cfg.now()
	claims, err := Verify(*req.Token, h.v.JWKS(), Expected{Issuer: cfg.Issuer, Audience: cfg.Audience, Now: now, Leeway: h.cfg.leeway})
	if err != nil {
		reason := invalidReason(err)
		h.cfg.log.Info("token redeem refused: invalid token", zap.String("reason", reason),
			zap.Int("token_bytes", len(*req.Token)), zap.String("remote", r.RemoteAddr))
		h.reply(w, http.StatusUnprocessableEntity, CodeInvalidToken, reason)
		return
	}
	log := h.cfg.log.With(zap.String("jti", claims.ID), zap.String("call", claims.Call), zap.String("kid", claims.KeyID))
	first, err := h.replay.Consume(r.Context(), claims.ID, claims.Expiry.Add(h.cfg.leeway))
	if err != nil {
		log.Error("token redeem failed: replay store unavailable", zap.Error(err))
		w.Header().Set("Retry-After", "1")
		h.reply(w, http.StatusServiceUnavailable, CodeUnavailable, "cannot record the redemption; try again")
		return
	}
	if !first {
		log.Warn("token redeem refused: already redeemed", zap.String("remote", r.RemoteAddr))
		h.reply(w, http.StatusConflict, CodeRedeemed, "this token was redeemed before")
		return
	}
	log.Info("token redeemed", zap.String("remote", r.RemoteAddr))
	out := Redemption{KeyID: claims.KeyID, Issuer: claims.Issuer, Audience: claims.Audience,
		Expiry: claims.Expiry.Unix(), ID: claims.ID, Claims: claims.Claims}
	if !claims.IssuedAt.IsZero() {
		out.IssuedAt = claims.IssuedAt.Unix()
	}
	if !claims.NotBefore.IsZero() {
		out.NotBefore = claims.NotBefore.Unix()
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *redeemer) reply(w http.ResponseWriter, status int, code, reason string) {
	writeJSON(w, status, RedeemError{Error: code, Reason: reason})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// authorized compares the Bearer key with every agent key in constant time, as SHA-256
// digests so that neither length nor content leaks through timing.
func (h *redeemer) authorized(r *http.Request) bool {
	scheme, presented, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	presented = strings.TrimSpace(presented)
	if !ok || !strings.EqualFold(scheme, "Bearer") || presented == "" {
		return false
	}
	sum := sha256.Sum256([]byte(presented))
	match := 0
	for i := range h.keys {
		match |= subtle.ConstantTimeCompare(sum[:], h.keys[i][:])
	}
	return match == 1
}

// invalidReason names the check a token failed, from a fixed list (never its content).
func invalidReason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{ErrMalformed, "malformed token"},
		{ErrAlgorithm, "algorithm not allowed"},
		{ErrUnknownKey, "unknown key id"},
		{ErrSignature, "invalid signature"},
		{ErrExpired, "expired"},
		{ErrNotYetValid, "not yet valid"},
		{ErrIssuer, "wrong issuer"},
		{ErrAudience, "wrong audience"},
		{ErrMissingClaim, "missing claim"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "invalid token"
}
