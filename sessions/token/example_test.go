package token_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/token"
)

// An agent desktop receives a token on the agent WebSocket and checks it against the key set
// published at /.well-known/jwks.json before acting on the caller's request.
func ExampleVerify() {
	// Server side (normally `callproof serve`): a signer and its JWKS endpoint.
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	signer, _ := token.NewSigner(key, token.Config{}, token.WithClock(func() time.Time { return now }))
	raw, _, _ := signer.Issue(context.Background(), sessions.Claims{
		Subject: "cus_ada", Call: "CA123", ACR: "urn:callproof:ccpa:reasonably-high",
		AMR: []string{"kba", "otp", "mfa"}, CCPARequest: "delete", DataPoints: []string{"dob", "zip", "otp"},
		Declaration: true, RequestID: "req_1",
	})
	srv := httptest.NewServer(signer.JWKSHandler())
	defer srv.Close()

	// Integrator side: fetch the key set (cache it for up to 300 s) and verify.
	keys, err := token.FetchJWKS(context.Background(), srv.Client(), srv.URL+"/.well-known/jwks.json")
	if err != nil {
		fmt.Println("jwks:", err)
		return
	}
	v, err := token.Verify(raw, keys, token.Expected{
		Issuer: "callproof", Audience: "callproof-agent", Now: now.Add(time.Minute),
	})
	if err != nil {
		fmt.Println("reject:", err)
		return
	}
	fmt.Println("customer:", v.Subject, "call:", v.Call)
	fmt.Println("level:", v.ACR, "methods:", v.AMR, "request:", v.CCPARequest)
	fmt.Println("redeem once by jti; expires:", v.Expiry.UTC().Format(time.RFC3339))

	// Five minutes later the same token is refused.
	_, err = token.Verify(raw, keys, token.Expected{Now: now.Add(5 * time.Minute)})
	fmt.Println(err != nil)
	// Output:
	// customer: cus_ada call: CA123
	// level: urn:callproof:ccpa:reasonably-high methods: [kba otp mfa] request: delete
	// redeem once by jti; expires: 2025-03-01T12:05:00Z
	// true
}

// The JWKS lists the signing key as an OKP/Ed25519 key whose kid is its RFC 7638 thumbprint.
func ExampleSigner_JWKS() {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	signer, _ := token.NewSigner(key, token.Config{})
	set := signer.JWKS()
	b, _ := json.Marshal(set.Keys[0])
	var jwk map[string]string
	_ = json.Unmarshal(b, &jwk)
	fmt.Println(jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"], jwk["kid"] == signer.KeyID())
	var _ jose.JSONWebKeySet = set
	// Output: OKP Ed25519 EdDSA sig true
}
