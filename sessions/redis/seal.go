package redis

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// sealedPrefix marks a token the agent log keeps sealed. A JWT never starts with it.
const sealedPrefix = "sealed.v1."

// WithSealKey makes the agent log keep each verified call's token sealed (AES-256-GCM, the
// call id as associated data, a key derived from key), so that no token sits in Redis in
// clear; messages are unsealed as they are read back. Every node sharing the Redis must be
// given the same key (derive it from the deployment's shared server key). A token that does
// not unseal (a node with another key) is dropped from its message, and logged, rather than
// delivered. Without this option tokens are stored as the agent sees them.
func WithSealKey(key []byte) Option {
	return func(s *Store) {
		if len(key) == 0 {
			return
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte("callproof agent log token seal v1"))
		block, _ := aes.NewCipher(m.Sum(nil)) // a 32-byte key: cannot fail
		aead, _ := cipher.NewGCM(block)
		s.sealer = &tokenSealer{aead: aead}
	}
}

// tokenSealer seals and opens agent message tokens.
type tokenSealer struct{ aead cipher.AEAD }

var errUnseal = errors.New("sealed token does not open with this node's key")

func (t *tokenSealer) seal(token, call string) string {
	nonce := make([]byte, t.aead.NonceSize(), t.aead.NonceSize()+len(token)+t.aead.Overhead())
	_, _ = rand.Read(nonce)
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(t.aead.Seal(nonce, nonce, []byte(token), []byte(call)))
}

// open returns the token a stored value holds: a sealed one opened, anything else as it is.
func (t *tokenSealer) open(stored, call string) (string, error) {
	if !strings.HasPrefix(stored, sealedPrefix) {
		return stored, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(stored[len(sealedPrefix):])
	if t == nil || err != nil || len(raw) < t.aead.NonceSize() {
		return "", errUnseal
	}
	n := t.aead.NonceSize()
	plain, err := t.aead.Open(nil, raw[:n], raw[n:], []byte(call))
	if err != nil {
		return "", errUnseal
	}
	return string(plain), nil
}
