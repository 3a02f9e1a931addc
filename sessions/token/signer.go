package token

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/callproof/callproof/sessions"
)

// Defaults for Config.
const (
	DefaultIssuer   = "callproof"
	DefaultAudience = "callproof-agent"
	DefaultLifetime = 5 * time.Minute
	// MaxLifetime bounds Config.Lifetime: tokens are short-lived bearer credentials.
	MaxLifetime = time.Hour
)

// Config is the deployment data of a Signer.
type Config struct {
	// Issuer is the iss claim. Default "callproof".
	Issuer string
	// Audience is the aud claim. Default "callproof-agent".
	Audience string
	// Lifetime is exp minus iat. Default 5m; at most MaxLifetime.
	Lifetime time.Duration
}

func (c Config) withDefaults() Config {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.Lifetime == 0 {
		c.Lifetime = DefaultLifetime
	}
	return c
}

// Validate checks c after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.Lifetime < time.Second || c.Lifetime > MaxLifetime {
		return fmt.Errorf("%w: lifetime %v: want between 1s and %v", ErrBadConfig, c.Lifetime, MaxLifetime)
	}
	for name, v := range map[string]string{"issuer": c.Issuer, "audience": c.Audience} {
		if strings.TrimSpace(v) != v || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fmt.Errorf("%w: %s has spaces or control characters", ErrBadConfig, name)
		}
	}
	return nil
}

// Option configures a Signer.
type Option func(*Signer)

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Signer) {
		if now != nil {
			s.now = now
		}
	}
}

// WithRand sets the source of jti randomness (default crypto/rand). Ed25519 signatures are
// deterministic (RFC 8032 §5.1.6), so a fixed clock and reader give byte-identical tokens.
func WithRand(r io.Reader) Option {
	return func(s *Signer) {
		if r != nil {
			s.rand = r
		}
	}
}

// WithVerificationKeys adds public keys to the JWKS besides the signing key: the previous key
// during a rotation, or the next one published ahead of use (add a key to the JWKS at least
// one cache lifetime, 300 s, before signing with it).
func WithVerificationKeys(keys ...ed25519.PublicKey) Option {
	return func(s *Signer) { s.extra = append(s.extra, keys...) }
}

// Signer issues tokens for verified callers. It implements sessions.Issuer and serves the
// JWKS. It is safe for concurrent use.
type Signer struct {
	cfg    Config
	kid    string
	signer jose.Signer
	now    func() time.Time
	rand   io.Reader
	extra  []ed25519.PublicKey
	jwks   jose.JSONWebKeySet
	body   []byte // JWKS JSON, served as is
}

var _ sessions.Issuer = (*Signer)(nil)

// NewSigner returns a Signer for key and cfg.
func NewSigner(key ed25519.PrivateKey, cfg Config, opts ...Option) (*Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: not an Ed25519 private key", ErrBadKey)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Signer{cfg: cfg.withDefaults(), now: time.Now, rand: rand.Reader}
	for _, o := range opts {
		o(s)
	}
	pub := key.Public().(ed25519.PublicKey)
	s.kid = KeyID(pub)
	var err error
	s.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: key, KeyID: s.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("token: signer: %w", err)
	}
	seen := map[string]bool{}
	for _, p := range append([]ed25519.PublicKey{pub}, s.extra...) {
		if len(p) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: verification key is not an Ed25519 public key", ErrBadKey)
		}
		kid := KeyID(p)
		if seen[kid] {
			continue
		}
		seen[kid] = true
		s.jwks.Keys = append(s.jwks.Keys, jose.JSONWebKey{Key: p, KeyID: kid, Algorithm: string(jose.EdDSA), Use: "sig"})
	}
	if s.body, err = json.Marshal(s.jwks); err != nil {
		return nil, fmt.Errorf("token: jwks: %w", err)
	}
	return s, nil
}

// KeyID returns the kid of pub: the base64url (no padding) RFC 7638 SHA-256 thumbprint.
func KeyID(pub ed25519.PublicKey) string {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil { // only for a key of the wrong size, which callers check
		panic("token: thumbprint: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// KeyID returns the kid of the signing key.
func (s *Signer) KeyID() string { return s.kid }

// Config returns the signer's configuration with defaults applied.
func (s *Signer) Config() Config { return s.cfg }

// callproofClaims are the private claims, with their JSON names.
type callproofClaims struct {
	Call        string   `json:"call"`
	ACR         string   `json:"acr"`
	AMR         []string `json:"amr"`
	CCPARequest string   `json:"ccpa_request"`
	DataPoints  []string `json:"data_points"`
	Declaration bool     `json:"declaration"`
	ANIMatch    bool     `json:"ani_match"`
	Verstat     string   `json:"verstat,omitempty"`
	RequestID   string   `json:"request_id"`
	// AuthorizedAgent is present (true) only when the caller acted for the consumer (§7063).
	AuthorizedAgent bool `json:"authorized_agent,omitempty"`
}

// Issue implements sessions.Issuer: it signs c with iss, aud, iat, nbf, exp and a fresh
// 128-bit jti, and returns the compact token and the jti.
func (s *Signer) Issue(ctx context.Context, c sessions.Claims) (string, string, error) {
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	if c.Subject == "" || c.Call == "" || c.ACR == "" {
		return "", "", fmt.Errorf("%w: sub, call and acr are required", ErrBadClaims)
	}
	var b [16]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", "", fmt.Errorf("token: jti: %w", err)
	}
	jti := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()
	std := jwt.Claims{
		Issuer:    s.cfg.Issuer,
		Subject:   c.Subject,
		Audience:  jwt.Audience{s.cfg.Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(now.Add(s.cfg.Lifetime)),
		ID:        jti,
	}
	priv := callproofClaims{
		Call: c.Call, ACR: c.ACR, AMR: nonNil(c.AMR), CCPARequest: c.CCPARequest,
		DataPoints: nonNil(c.DataPoints), Declaration: c.Declaration, ANIMatch: c.ANIMatch,
		Verstat: c.Verstat, RequestID: c.RequestID, AuthorizedAgent: c.AuthorizedAgent,
	}
	raw, err := jwt.Signed(s.signer).Claims(std).Claims(priv).Serialize()
	if err != nil {
		return "", "", fmt.Errorf("token: sign: %w", err)
	}
	return raw, jti, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// JWKS returns the public key set: the signing key first, then any verification keys.
func (s *Signer) JWKS() jose.JSONWebKeySet {
	out := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(s.jwks.Keys))}
	copy(out.Keys, s.jwks.Keys)
	return out
}

// JWKSHandler serves the key set for GET /.well-known/jwks.json (RFC 7517 §5), as
// application/jwk-set+json, cacheable for 300 s.
func (s *Signer) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/jwk-set+json")
		h.Set("Cache-Control", "max-age=300")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(s.body)
	})
}
