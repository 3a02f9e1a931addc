package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/callproof/callproof/sessions/token"
)

// runKeygen writes a new Ed25519 signing key as PKCS#8 PEM and prints its key id.
func runKeygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to write the PKCS#8 PEM private key to (required; never overwritten)")
	if err := fs.Parse(args); err != nil {
		return exitError{code: 2}
	}
	if *out == "" {
		return exitError{code: 2, msg: "keygen: --out FILE is required"}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	s, err := token.NewSigner(priv, token.Config{})
	if err != nil {
		return err
	}
	set := s.JWKS()
	fmt.Fprintf(stdout, "wrote %s (Ed25519, kid %s)\n", *out, set.Keys[0].KeyID)
	return nil
}

// runTokenVerify checks a token's signature and claims against a JWKS (a URL or a file) and
// prints the claims. The token comes as the argument or on standard input.
func runTokenVerify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jwks := fs.String("jwks", "http://127.0.0.1:8080/.well-known/jwks.json", "JWKS URL or file")
	issuer := fs.String("issuer", "callproof", "expected issuer")
	audience := fs.String("audience", "callproof-agent", "expected audience")
	at := fs.String("at", "", "check expiry at this RFC 3339 time instead of now")
	if err := fs.Parse(args); err != nil {
		return exitError{code: 2}
	}
	raw := fs.Arg(0)
	if raw == "" || raw == "-" {
		data, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
		if err != nil {
			return err
		}
		raw = strings.TrimSpace(string(data))
	}
	if raw == "" {
		return exitError{code: 2, msg: "token verify: give the token as an argument or on standard input"}
	}
	now := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return exitError{code: 2, msg: "token verify: --at: " + err.Error()}
		}
		now = t
	}
	var keys jose.JSONWebKeySet
	if strings.HasPrefix(*jwks, "http://") || strings.HasPrefix(*jwks, "https://") {
		k, err := token.FetchJWKS(ctx, http.DefaultClient, *jwks)
		if err != nil {
			return fmt.Errorf("jwks: %w", err)
		}
		keys = k
	} else {
		data, err := os.ReadFile(*jwks)
		if err != nil {
			return fmt.Errorf("jwks: %w", err)
		}
		if err := json.Unmarshal(data, &keys); err != nil {
			return fmt.Errorf("jwks %s: %w", *jwks, err)
		}
		if len(keys.Keys) == 0 {
			return errors.New("jwks: no keys")
		}
	}
	v, err := token.Verify(raw, keys, token.Expected{Issuer: *issuer, Audience: *audience, Now: now})
	if err != nil {
		return exitError{code: 1, msg: "token verify: " + err.Error()}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
