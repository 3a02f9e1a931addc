package token_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	gjwt "github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/token"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Fixed inputs: the key from a constant seed, a fixed clock and a zero jti source give
// byte-identical tokens (Ed25519 signatures are deterministic).
var (
	testKey  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, ed25519.SeedSize))
	otherKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x17}, ed25519.SeedSize))
	issuedAt = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
)

func testClaims() sessions.Claims {
	return sessions.Claims{
		Subject:     "cus_ada",
		Call:        "CA0123456789abcdef0123456789abcdef",
		ACR:         "urn:callproof:ccpa:reasonably-high",
		AMR:         []string{"kba", "otp", "mfa"},
		CCPARequest: "delete",
		DataPoints:  []string{"dob", "zip", "otp"},
		Declaration: true,
		ANIMatch:    true,
		Verstat:     "TN-Validation-Passed-A",
		RequestID:   "req_000000000000000000000001",
	}
}

func newSigner(t testing.TB, key ed25519.PrivateKey, opts ...token.Option) *token.Signer {
	t.Helper()
	opts = append([]token.Option{token.WithClock(func() time.Time { return issuedAt }),
		token.WithRand(zeroReader{})}, opts...)
	s, err := token.NewSigner(key, token.Config{}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func issue(t testing.TB, s *token.Signer, c sessions.Claims) (string, string) {
	t.Helper()
	raw, jti, err := s.Issue(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return raw, jti
}

func decodeSegment(t testing.TB, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGoldenClaims(t *testing.T) {
	s := newSigner(t, testKey)
	raw, jti := issue(t, s, testClaims())
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	if jti != "AAAAAAAAAAAAAAAAAAAAAA" {
		t.Fatalf("jti %q: want 128 zero bits in base64url", jti)
	}
	got, err := json.MarshalIndent(map[string]any{
		"header": decodeSegment(t, parts[0]),
		"claims": decodeSegment(t, parts[1]),
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "claims.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGoldenClaims -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("claims differ from %s (run with -update if intended):\n%s", path, got)
	}
	// Deterministic: same inputs, same bytes.
	if again, _ := issue(t, s, testClaims()); again != raw {
		t.Fatal("same key, clock and randomness gave a different token")
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	s := newSigner(t, testKey)
	c := testClaims()
	c.AMR, c.DataPoints, c.Verstat = nil, nil, ""
	raw, _ := issue(t, s, c)
	claims := decodeSegment(t, strings.Split(raw, ".")[1])
	for _, k := range []string{"amr", "data_points"} {
		if v, ok := claims[k].([]any); !ok || len(v) != 0 {
			t.Errorf("%s = %#v, want []", k, claims[k])
		}
	}
	if _, ok := claims["verstat"]; ok {
		t.Error("empty verstat present")
	}
}

func TestIssueRejectsIncompleteClaims(t *testing.T) {
	s := newSigner(t, testKey)
	for _, mutate := range []func(*sessions.Claims){
		func(c *sessions.Claims) { c.Subject = "" },
		func(c *sessions.Claims) { c.Call = "" },
		func(c *sessions.Claims) { c.ACR = "" },
	} {
		c := testClaims()
		mutate(&c)
		if _, _, err := s.Issue(context.Background(), c); !errors.Is(err, token.ErrBadClaims) {
			t.Errorf("Issue: %v, want ErrBadClaims", err)
		}
	}
}

func TestKeyIDIsRFC7638Thumbprint(t *testing.T) {
	pub := testKey.Public().(ed25519.PublicKey)
	// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
	input := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(input))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	if got := token.KeyID(pub); got != want {
		t.Fatalf("KeyID = %s, want %s", got, want)
	}
	if s := newSigner(t, testKey); s.KeyID() != want || s.JWKS().Keys[0].KeyID != want {
		t.Fatal("signer kid differs from the thumbprint")
	}
}

// jwksJSON is the key set as an integrator fetches it.
func jwksJSON(t testing.TB, s *token.Signer) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	s.JWKSHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("JWKS status %d", rec.Code)
	}
	return rec.Body.Bytes()
}

// TestGolangJWTVerifies checks interoperability with an independent JOSE implementation:
// golang-jwt verifies the token with a key read from the JWKS JSON by hand.
func TestGolangJWTVerifies(t *testing.T) {
	s := newSigner(t, testKey, token.WithClock(time.Now))
	raw, jti := issue(t, s, testClaims())

	var set struct {
		Keys []struct{ Kty, Crv, X, Kid, Alg, Use string } `json:"keys"`
	}
	if err := json.Unmarshal(jwksJSON(t, s), &set); err != nil {
		t.Fatal(err)
	}
	keyfunc := func(tok *gjwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		for _, k := range set.Keys {
			if k.Kid == kid && k.Kty == "OKP" && k.Crv == "Ed25519" && k.Alg == "EdDSA" && k.Use == "sig" {
				x, err := base64.RawURLEncoding.DecodeString(k.X)
				if err != nil {
					return nil, err
				}
				return ed25519.PublicKey(x), nil
			}
		}
		return nil, errors.New("unknown kid")
	}
	type claims struct {
		gjwt.RegisteredClaims
		Call        string   `json:"call"`
		ACR         string   `json:"acr"`
		AMR         []string `json:"amr"`
		DataPoints  []string `json:"data_points"`
		Declaration bool     `json:"declaration"`
		RequestID   string   `json:"request_id"`
	}
	var c claims
	tok, err := gjwt.ParseWithClaims(raw, &c, keyfunc,
		gjwt.WithValidMethods([]string{"EdDSA"}), gjwt.WithIssuer(token.DefaultIssuer),
		gjwt.WithAudience(token.DefaultAudience), gjwt.WithExpirationRequired(), gjwt.WithIssuedAt())
	if err != nil || !tok.Valid {
		t.Fatalf("golang-jwt rejected the token: %v", err)
	}
	if tok.Header["typ"] != "JWT" {
		t.Errorf("typ %v", tok.Header["typ"])
	}
	want := testClaims()
	if c.Subject != want.Subject || c.Call != want.Call || c.ACR != want.ACR || c.ID != jti ||
		!c.Declaration || c.RequestID != want.RequestID || strings.Join(c.AMR, ",") != "kba,otp,mfa" {
		t.Fatalf("claims read by golang-jwt: %+v", c)
	}
	if got := c.ExpiresAt.Sub(c.IssuedAt.Time); got != token.DefaultLifetime {
		t.Fatalf("lifetime %v", got)
	}
	// And golang-jwt rejects a tampered one.
	if _, err := gjwt.ParseWithClaims(tamperSignature(raw), &claims{}, keyfunc,
		gjwt.WithValidMethods([]string{"EdDSA"})); err == nil {
		t.Fatal("golang-jwt accepted a tampered signature")
	}
}

// golangJWTToken signs claims with golang-jwt, the other way round.
func TestVerifyAcceptsGolangJWTToken(t *testing.T) {
	s := newSigner(t, testKey)
	tok := gjwt.NewWithClaims(gjwt.SigningMethodEdDSA, gjwt.MapClaims{
		"iss": "callproof", "aud": "callproof-agent", "sub": "cus_ada", "jti": "j1", "call": "CA1",
		"iat": issuedAt.Unix(), "exp": issuedAt.Add(time.Minute).Unix(), "amr": []string{"kba"},
	})
	tok.Header["kid"] = s.KeyID()
	raw, err := tok.SignedString(testKey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.Verify(raw, s.JWKS(), token.Expected{Now: issuedAt})
	if err != nil {
		t.Fatal(err)
	}
	if v.Subject != "cus_ada" || v.Call != "CA1" || v.ID != "j1" {
		t.Fatalf("%+v", v)
	}
}

func tamperSignature(raw string) string {
	i := strings.LastIndexByte(raw, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(raw[i+1:])
	sig[0] ^= 1
	return raw[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

func seg(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// signRaw signs arbitrary claims with go-jose and extra header fields.
func signRaw(t testing.TB, key ed25519.PrivateKey, kid string, claims map[string]any, hdr map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	for k, v := range hdr {
		opts = opts.WithHeader(jose.HeaderKey(k), v)
	}
	sk := jose.SigningKey{Algorithm: jose.EdDSA, Key: key}
	if kid != "" {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := josejwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestVerify(t *testing.T) {
	s := newSigner(t, testKey)
	keys := s.JWKS()
	kid := s.KeyID()
	raw, jti := issue(t, s, testClaims())
	parts := strings.Split(raw, ".")
	exp := issuedAt.Add(token.DefaultLifetime)
	base := map[string]any{"iss": "callproof", "aud": "callproof-agent", "sub": "cus_ada", "jti": "j",
		"iat": issuedAt.Unix(), "nbf": issuedAt.Unix(), "exp": exp.Unix()}
	without := func(k string) map[string]any {
		m := map[string]any{}
		for kk, v := range base {
			if kk != k {
				m[kk] = v
			}
		}
		return m
	}
	with := func(k string, v any) map[string]any { m := without(""); m[k] = v; return m }

	// The payload with the subject changed, under the original header and signature.
	var payload map[string]any
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(pb, &payload)
	payload["sub"] = "cus_mallory"
	tamperedPayload := parts[0] + "." + seg(payload) + "." + parts[2]

	mac := hmac.New(sha256.New, testKey.Public().(ed25519.PublicKey))
	hsInput := seg(map[string]any{"alg": "HS256", "kid": kid, "typ": "JWT"}) + "." + parts[1]
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	wrongAlgKeys := s.JWKS()
	wrongAlgKeys.Keys[0].Algorithm = "RS256"
	encKeys := s.JWKS()
	encKeys.Keys[0].Use = "enc"

	tests := []struct {
		name string
		raw  string
		keys jose.JSONWebKeySet
		exp  token.Expected
		want error
	}{
		{"valid", raw, keys, token.Expected{Now: issuedAt}, nil},
		{"valid just before exp", raw, keys, token.Expected{Now: exp.Add(-time.Second)}, nil},
		{"explicit iss and aud", raw, keys, token.Expected{Issuer: "callproof", Audience: "callproof-agent", Now: issuedAt}, nil},
		{"expired at exp", raw, keys, token.Expected{Now: exp}, token.ErrExpired},
		{"expired within leeway", raw, keys, token.Expected{Now: exp, Leeway: time.Second}, nil},
		{"not yet valid", raw, keys, token.Expected{Now: issuedAt.Add(-time.Second)}, token.ErrNotYetValid},
		{"not yet valid within leeway", raw, keys, token.Expected{Now: issuedAt.Add(-time.Second), Leeway: 5 * time.Second}, nil},
		{"wrong issuer", raw, keys, token.Expected{Issuer: "someone", Now: issuedAt}, token.ErrIssuer},
		{"wrong audience", raw, keys, token.Expected{Audience: "crm", Now: issuedAt}, token.ErrAudience},
		{"tampered signature", tamperSignature(raw), keys, token.Expected{Now: issuedAt}, token.ErrSignature},
		{"tampered payload", tamperedPayload, keys, token.Expected{Now: issuedAt}, token.ErrSignature},
		{"alg none", seg(map[string]any{"alg": "none", "kid": kid}) + "." + parts[1] + ".", keys, token.Expected{Now: issuedAt}, token.ErrAlgorithm},
		{"alg HS256 keyed with the public key", hs256, keys, token.Expected{Now: issuedAt}, token.ErrAlgorithm},
		{"alg Ed25519 (RFC 9864) not yet accepted", seg(map[string]any{"alg": "Ed25519", "kid": kid}) + "." + parts[1] + "." + parts[2], keys, token.Expected{Now: issuedAt}, token.ErrAlgorithm},
		{"unknown kid", signRaw(t, otherKey, token.KeyID(otherKey.Public().(ed25519.PublicKey)), base, nil), keys, token.Expected{Now: issuedAt}, token.ErrUnknownKey},
		{"no kid", signRaw(t, testKey, "", base, nil), keys, token.Expected{Now: issuedAt}, token.ErrUnknownKey},
		{"known kid, other key", signRaw(t, otherKey, kid, base, nil), keys, token.Expected{Now: issuedAt}, token.ErrSignature},
		{"key listed for another alg", raw, wrongAlgKeys, token.Expected{Now: issuedAt}, token.ErrUnknownKey},
		{"key listed for encryption", raw, encKeys, token.Expected{Now: issuedAt}, token.ErrUnknownKey},
		{"empty key set", raw, jose.JSONWebKeySet{}, token.Expected{Now: issuedAt}, token.ErrUnknownKey},
		{"no exp", signRaw(t, testKey, kid, without("exp"), nil), keys, token.Expected{Now: issuedAt}, token.ErrMissingClaim},
		{"no sub", signRaw(t, testKey, kid, without("sub"), nil), keys, token.Expected{Now: issuedAt}, token.ErrMissingClaim},
		{"no jti", signRaw(t, testKey, kid, without("jti"), nil), keys, token.Expected{Now: issuedAt}, token.ErrMissingClaim},
		{"iat in the future", signRaw(t, testKey, kid, with("iat", issuedAt.Add(time.Minute).Unix()), nil), keys, token.Expected{Now: issuedAt}, token.ErrNotYetValid},
		{"audience list", signRaw(t, testKey, kid, with("aud", []string{"crm", "callproof-agent"}), nil), keys, token.Expected{Now: issuedAt}, nil},
		{"crit header", signRaw(t, testKey, kid, base, map[string]any{"crit": []string{"exp"}}), keys, token.Expected{Now: issuedAt}, token.ErrMalformed},
		{"typ not JWT", seg(map[string]any{"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}) + "." + parts[1] + "." + parts[2], keys, token.Expected{Now: issuedAt}, token.ErrMalformed},
		{"empty", "", keys, token.Expected{Now: issuedAt}, token.ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], keys, token.Expected{Now: issuedAt}, token.ErrMalformed},
		{"four parts", raw + ".x", keys, token.Expected{Now: issuedAt}, token.ErrMalformed},
		{"header not base64", "!!." + parts[1] + "." + parts[2], keys, token.Expected{Now: issuedAt}, token.ErrMalformed},
		{"header not JSON", seg("x")[:2] + "." + parts[1] + "." + parts[2], keys, token.Expected{Now: issuedAt}, token.ErrMalformed},
		{"oversize", raw + strings.Repeat("A", token.MaxTokenSize), keys, token.Expected{Now: issuedAt}, token.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := token.Verify(tt.raw, tt.keys, tt.exp)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if v.Subject == "" || v.KeyID != kid {
					t.Fatalf("verified %+v", v)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
			if v != nil {
				t.Fatal("claims returned with an error")
			}
			if tt.raw != "" && strings.Contains(err.Error(), tt.raw) {
				t.Fatal("error message contains the token")
			}
		})
	}

	v, err := token.Verify(raw, keys, token.Expected{Now: issuedAt})
	if err != nil {
		t.Fatal(err)
	}
	want := testClaims()
	if v.ID != jti || v.Issuer != "callproof" || strings.Join(v.Audience, ",") != "callproof-agent" ||
		!v.IssuedAt.Equal(issuedAt) || !v.NotBefore.Equal(issuedAt) || !v.Expiry.Equal(exp) ||
		v.Subject != want.Subject || v.Call != want.Call || v.ACR != want.ACR || v.CCPARequest != want.CCPARequest ||
		strings.Join(v.DataPoints, ",") != "dob,zip,otp" || strings.Join(v.AMR, ",") != "kba,otp,mfa" ||
		!v.Declaration || !v.ANIMatch || v.Verstat != want.Verstat || v.RequestID != want.RequestID {
		t.Fatalf("verified claims %+v", v)
	}
}

func TestRotation(t *testing.T) {
	oldSigner := newSigner(t, otherKey)
	oldToken, _ := issue(t, oldSigner, testClaims())
	s := newSigner(t, testKey, token.WithVerificationKeys(otherKey.Public().(ed25519.PublicKey),
		testKey.Public().(ed25519.PublicKey)))
	set := s.JWKS()
	if len(set.Keys) != 2 || set.Keys[0].KeyID != s.KeyID() {
		t.Fatalf("JWKS keys %d, first %s", len(set.Keys), set.Keys[0].KeyID)
	}
	if _, err := token.Verify(oldToken, set, token.Expected{Now: issuedAt}); err != nil {
		t.Fatalf("token of the previous key: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  token.Config
		ok   bool
	}{
		{"zero takes defaults", token.Config{}, true},
		{"custom", token.Config{Issuer: "https://verify.example.com", Audience: "crm", Lifetime: 10 * time.Minute}, true},
		{"negative lifetime", token.Config{Lifetime: -time.Minute}, false},
		{"too long", token.Config{Lifetime: 2 * time.Hour}, false},
		{"too short", token.Config{Lifetime: time.Millisecond}, false},
		{"issuer with space", token.Config{Issuer: " callproof"}, false},
		{"audience with newline", token.Config{Audience: "a\nb"}, false},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, token.ErrBadConfig)) {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
		if _, err := token.NewSigner(testKey, tt.cfg); (err == nil) != tt.ok {
			t.Errorf("%s: NewSigner: %v", tt.name, err)
		}
	}
	s := newSigner(t, testKey)
	if c := s.Config(); c.Issuer != token.DefaultIssuer || c.Audience != token.DefaultAudience || c.Lifetime != token.DefaultLifetime {
		t.Fatalf("defaults %+v", c)
	}
	if _, err := token.NewSigner(testKey[:10], token.Config{}); !errors.Is(err, token.ErrBadKey) {
		t.Fatalf("short key: %v", err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := token.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, token.KeyFileName)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Fatalf("not PKCS#8 PEM: %.30q", data)
	}
	k2, err := token.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("second start generated a new key")
	}
	k3, err := token.LoadKeyFile(path)
	if err != nil || !k1.Equal(k3) {
		t.Fatalf("LoadKeyFile: %v", err)
	}
	if err := token.WriteKeyFile(path, otherKey); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("WriteKeyFile over an existing key: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestLoadOrCreateKeyConcurrentStarts(t *testing.T) {
	dir := t.TempDir()
	keys := make([]ed25519.PrivateKey, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := token.LoadOrCreateKey(dir)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !k.Equal(keys[0]) {
			t.Fatal("concurrent first starts ended with different keys")
		}
	}
}

func TestLoadKeyFileRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct{ name, content string }{
		{"empty", ""},
		{"not PEM", "hello"},
		{"wrong block", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"},
		{"garbage DER", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
	}
	for _, tt := range tests {
		if _, err := token.LoadKeyFile(write(tt.name, tt.content)); !errors.Is(err, token.ErrBadKey) {
			t.Errorf("%s: %v, want ErrBadKey", tt.name, err)
		}
	}
	if _, err := token.LoadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

func TestJWKSHandlerAndFetch(t *testing.T) {
	s := newSigner(t, testKey)
	srv := httptest.NewServer(s.JWKSHandler())
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "max-age=300" {
		t.Errorf("Cache-Control %q", cc)
	}
	post, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status %d", post.StatusCode)
	}

	var raw map[string][]map[string]any
	if err := json.Unmarshal(jwksJSON(t, s), &raw); err != nil {
		t.Fatal(err)
	}
	k := raw["keys"][0]
	for field, want := range map[string]any{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": s.KeyID()} {
		if k[field] != want {
			t.Errorf("JWK %s = %v, want %v", field, k[field], want)
		}
	}
	if _, ok := k["d"]; ok {
		t.Fatal("JWKS publishes the private key")
	}

	ctx := context.Background()
	set, err := token.FetchJWKS(ctx, srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := issue(t, s, testClaims())
	if _, err := token.Verify(tok, set, token.Expected{Now: issuedAt}); err != nil {
		t.Fatalf("verify against fetched JWKS: %v", err)
	}

	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/404":
			http.NotFound(w, r)
		case "/empty":
			w.Write([]byte(`{"keys":[]}`))
		default:
			w.Write([]byte(`<html>`))
		}
	}))
	defer bad.Close()
	for _, p := range []string{"/404", "/empty", "/html"} {
		if _, err := token.FetchJWKS(ctx, bad.Client(), bad.URL+p); !errors.Is(err, token.ErrJWKS) {
			t.Errorf("%s: %v, want ErrJWKS", p, err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := token.FetchJWKS(cancelled, srv.Client(), srv.URL); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestJWKSIsACopy(t *testing.T) {
	s := newSigner(t, testKey)
	set := s.JWKS()
	set.Keys[0].KeyID = "changed"
	if s.JWKS().Keys[0].KeyID != s.KeyID() {
		t.Fatal("JWKS() exposes the signer's state")
	}
}
