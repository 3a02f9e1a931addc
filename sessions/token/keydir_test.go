package token_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions/token"
)

func seedKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func writePriv(t *testing.T, dir, name string, k ed25519.PrivateKey) {
	t.Helper()
	if err := token.WriteKeyFile(filepath.Join(dir, name), k); err != nil {
		t.Fatal(err)
	}
}

func writePub(t *testing.T, dir, name string, k ed25519.PrivateKey) {
	t.Helper()
	if err := token.WritePublicKeyFile(filepath.Join(dir, name), pubOf(k)); err != nil {
		t.Fatal(err)
	}
}

func kids(s *token.Signer) []string {
	var out []string
	for _, k := range s.JWKS().Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func TestLoadKeyDir(t *testing.T) {
	a, b, c := seedKey(1), seedKey(2), seedKey(3)
	dir := t.TempDir()
	writePriv(t, dir, "2025-01-01.pem", a)
	writePriv(t, dir, "2025-06-01.pem", b)
	writePub(t, dir, "2025-09-01.pem", c) // published ahead of use
	_ = os.WriteFile(filepath.Join(dir, ".editor-swap.pem"), []byte("junk"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "README"), []byte("keys"), 0o600)
	_ = os.Mkdir(filepath.Join(dir, "old.pem"), 0o700)

	kd, err := token.LoadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !kd.Signing.Equal(b) || kd.SigningFile != "2025-06-01.pem" {
		t.Fatalf("signing key from %s, want 2025-06-01.pem", kd.SigningFile)
	}
	if len(kd.Verification) != 2 || !kd.Verification[0].Equal(pubOf(a)) || !kd.Verification[1].Equal(pubOf(c)) {
		t.Fatalf("verification keys %d, want a then c", len(kd.Verification))
	}
	s, err := token.NewSigner(kd.Signing, token.Config{}, kd.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{token.KeyID(pubOf(b)), token.KeyID(pubOf(a)), token.KeyID(pubOf(c))}
	if got := kids(s); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("JWKS kids %v, want %v (signing key first)", got, want)
	}
	// The public file cannot be overwritten by accident.
	if err := token.WritePublicKeyFile(filepath.Join(dir, "2025-09-01.pem"), pubOf(a)); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwrite: %v", err)
	}
}

func TestLoadKeyDirErrors(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecPub, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	pubOnly := func(dir string) error {
		return token.WritePublicKeyFile(filepath.Join(dir, "a.pem"), pubOf(seedKey(9)))
	}
	file := func(data []byte) func(string) error {
		return func(dir string) error { return os.WriteFile(filepath.Join(dir, "a.pem"), data, 0o600) }
	}
	tests := []struct {
		name    string
		setup   func(dir string) error
		goodKey bool // a good private key beside it does not excuse a bad file
	}{
		{"empty directory", func(string) error { return nil }, false},
		{"only public keys", pubOnly, false},
		{"not PEM", file([]byte("hello")), true},
		{"other PEM type", file(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})), true},
		{"ECDSA private key", file(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})), true},
		{"ECDSA public key", file(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecPub})), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tt.setup(dir); err != nil {
				t.Fatal(err)
			}
			if tt.goodKey {
				writePriv(t, dir, "z-good.pem", seedKey(8))
			}
			if _, err := token.LoadKeyDir(dir); !errors.Is(err, token.ErrBadKey) {
				t.Fatalf("LoadKeyDir: %v, want ErrBadKey", err)
			}
		})
	}
	if _, err := token.LoadKeyDir(filepath.Join(t.TempDir(), "missing")); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing directory: %v", err)
	}
}

// TestRotationProcedure walks the documented rotation on one node's key directory.
func TestRotationProcedure(t *testing.T) {
	oldKey, newKey := seedKey(1), seedKey(2)
	dir := t.TempDir()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	load := func() *token.Signer {
		t.Helper()
		kd, err := token.LoadKeyDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		s, err := token.NewSigner(kd.Signing, token.Config{}, append(kd.Options(), token.WithClock(func() time.Time { return now }))...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	writePriv(t, dir, "2025-01-01.pem", oldKey)
	before := load()
	oldTok, _ := issue(t, before, testClaims())

	// 1. Publish the new key's public half; the old key still signs.
	writePub(t, dir, "2025-06-01.pem", newKey)
	step1 := load()
	if step1.KeyID() != token.KeyID(pubOf(oldKey)) || len(step1.JWKS().Keys) != 2 {
		t.Fatalf("step 1: signs with %s, %d keys published", step1.KeyID(), len(step1.JWKS().Keys))
	}
	// 2. After the JWKS cache lifetime, replace it with the private key: it signs now.
	os.Remove(filepath.Join(dir, "2025-06-01.pem"))
	writePriv(t, dir, "2025-06-01.pem", newKey)
	step2 := load()
	if step2.KeyID() != token.KeyID(pubOf(newKey)) {
		t.Fatal("step 2: the new key does not sign")
	}
	newTok, _ := issue(t, step2, testClaims())
	for _, raw := range []string{oldTok, newTok} {
		if _, err := token.Verify(raw, step2.JWKS(), token.Expected{Now: now}); err != nil {
			t.Fatalf("step 2: %v", err)
		}
	}
	// 3. Once the old key's tokens have expired (lifetime plus cache), remove it.
	os.Remove(filepath.Join(dir, "2025-01-01.pem"))
	step3 := load()
	if _, err := token.Verify(oldTok, step3.JWKS(), token.Expected{Now: now}); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("step 3, old token: %v", err)
	}
	if _, err := token.Verify(newTok, step3.JWKS(), token.Expected{Now: now}); err != nil {
		t.Fatalf("step 3, new token: %v", err)
	}
}
