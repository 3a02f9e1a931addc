package token

import (
	"context"
	"crypto/ed25519"
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

// MaxTokenSize bounds the tokens Verify parses.
const MaxTokenSize = 8 << 10

// Expected is what Verify checks a token against.
type Expected struct {
	// Issuer is the required iss. Empty means DefaultIssuer.
	Issuer string
	// Audience must be one of the token's aud values. Empty means DefaultAudience.
	Audience string
	// Now is the time of the check. Zero means time.Now().
	Now time.Time
	// Leeway tolerates clock skew on exp, nbf and iat. Zero means none.
	Leeway time.Duration
}

// Verified is a token that passed Verify: its header's kid, its registered claims and the
// Callproof claims (promoted from the embedded sessions.Claims: v.Subject, v.Call, v.ACR...).
type Verified struct {
	KeyID     string    `json:"kid"`
	Issuer    string    `json:"iss"`
	Audience  []string  `json:"aud"`
	IssuedAt  time.Time `json:"iat"`
	NotBefore time.Time `json:"nbf"`
	Expiry    time.Time `json:"exp"`
	ID        string    `json:"jti"`
	sessions.Claims
}

// header is the part of the JOSE header Verify looks at before go-jose parses the token.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

// Verify checks a compact JWS token against keys and exp and returns its claims. It requires
// alg EdDSA (RFC 8037 §3.1; nothing else, never "none"), a kid naming an Ed25519 key in keys,
// a valid signature, exp present and after exp.Now (RFC 7519 §4.1.4), nbf and iat not after
// it, iss equal to exp.Issuer, exp.Audience among aud, and sub and jti present. Errors match
// one of the package's sentinels; they never include the token.
func Verify(raw string, keys jose.JSONWebKeySet, exp Expected) (*Verified, error) {
	if exp.Issuer == "" {
		exp.Issuer = DefaultIssuer
	}
	if exp.Audience == "" {
		exp.Audience = DefaultAudience
	}
	if exp.Now.IsZero() {
		exp.Now = time.Now()
	}
	if len(raw) > MaxTokenSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(raw))
	}
	hdrPart, _, ok := strings.Cut(raw, ".")
	if !ok || strings.Count(raw, ".") != 2 {
		return nil, fmt.Errorf("%w: want three dot-separated parts", ErrMalformed)
	}
	hb, err := base64.RawURLEncoding.DecodeString(hdrPart)
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fmt.Errorf("%w: header is not JSON", ErrMalformed)
	}
	if h.Alg != string(jose.EdDSA) {
		return nil, fmt.Errorf("%w: %q, want EdDSA", ErrAlgorithm, truncate(h.Alg))
	}
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") {
		return nil, fmt.Errorf("%w: typ %q, want JWT", ErrMalformed, truncate(h.Typ))
	}
	if len(h.Crit) > 0 {
		return nil, fmt.Errorf("%w: unsupported critical header", ErrMalformed)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	kid := tok.Headers[0].KeyID
	pub := lookup(keys, kid)
	if pub == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, truncate(kid))
	}
	var std jwt.Claims
	var c sessions.Claims
	if err := tok.Claims(pub, &std, &c); err != nil {
		return nil, fmt.Errorf("%w", ErrSignature)
	}
	if std.Expiry == nil {
		return nil, fmt.Errorf("%w: exp", ErrMissingClaim)
	}
	v := &Verified{KeyID: kid, Issuer: std.Issuer, Audience: std.Audience, IssuedAt: std.IssuedAt.Time(),
		NotBefore: std.NotBefore.Time(), Expiry: std.Expiry.Time(), ID: std.ID, Claims: c}
	v.Subject = std.Subject
	switch {
	case !exp.Now.Before(v.Expiry.Add(exp.Leeway)):
		return nil, fmt.Errorf("%w: at %s", ErrExpired, v.Expiry.UTC().Format(time.RFC3339))
	case std.NotBefore != nil && exp.Now.Add(exp.Leeway).Before(v.NotBefore):
		return nil, fmt.Errorf("%w: nbf %s", ErrNotYetValid, v.NotBefore.UTC().Format(time.RFC3339))
	case std.IssuedAt != nil && exp.Now.Add(exp.Leeway).Before(v.IssuedAt):
		return nil, fmt.Errorf("%w: iat %s", ErrNotYetValid, v.IssuedAt.UTC().Format(time.RFC3339))
	case std.Issuer != exp.Issuer:
		return nil, fmt.Errorf("%w: %q", ErrIssuer, truncate(std.Issuer))
	case !std.Audience.Contains(exp.Audience):
		return nil, fmt.Errorf("%w: want %q", ErrAudience, exp.Audience)
	case std.Subject == "":
		return nil, fmt.Errorf("%w: sub", ErrMissingClaim)
	case std.ID == "":
		return nil, fmt.Errorf("%w: jti", ErrMissingClaim)
	}
	return v, nil
}

// lookup returns the Ed25519 public key with id kid, if keys has one usable for signatures.
func lookup(keys jose.JSONWebKeySet, kid string) ed25519.PublicKey {
	if kid == "" {
		return nil
	}
	for _, k := range keys.Key(kid) {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != string(jose.EdDSA) {
			continue
		}
		if pub, ok := k.Key.(ed25519.PublicKey); ok && len(pub) == ed25519.PublicKeySize {
			return pub
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// maxJWKSSize bounds the key set FetchJWKS reads.
const maxJWKSSize = 1 << 20

// FetchJWKS gets the key set at url (GET, 200, JSON, at least one key). A nil client means
// http.DefaultClient. Cache the result; the server allows 300 s.
func FetchJWKS(ctx context.Context, client *http.Client, url string) (jose.JSONWebKeySet, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: %v", ErrJWKS, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := client.Do(req)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: %w", ErrJWKS, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: HTTP %d", ErrJWKS, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: %w", ErrJWKS, err)
	}
	if len(data) > maxJWKSSize {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: larger than %d bytes", ErrJWKS, maxJWKSSize)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: %v", ErrJWKS, err)
	}
	if len(set.Keys) == 0 {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: no keys", ErrJWKS)
	}
	return set, nil
}
