package token_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/token"
)

func benchSigner(b *testing.B) *token.Signer {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	s, err := token.NewSigner(key, token.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

var benchClaims = sessions.Claims{Subject: "cus_ada", Call: "CA0123456789abcdef", ACR: "urn:callproof:ccpa:reasonable",
	AMR: []string{"kba"}, CCPARequest: "know_categories", DataPoints: []string{"dob", "zip"}, RequestID: "req_0123"}

// BenchmarkIssue is signing one verification token (EdDSA), once per verified call.
func BenchmarkIssue(b *testing.B) {
	s := benchSigner(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Issue(context.Background(), benchClaims); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is an integrator's check of a token against the JWKS.
func BenchmarkVerify(b *testing.B) {
	s := benchSigner(b)
	raw, _, err := s.Issue(context.Background(), benchClaims)
	if err != nil {
		b.Fatal(err)
	}
	keys := s.JWKS()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token.Verify(raw, keys, token.Expected{Now: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
}
