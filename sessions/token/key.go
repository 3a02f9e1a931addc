package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFileName is the signing key's file name inside the data directory.
const KeyFileName = "signing-key.pem"

// LoadOrCreateKey returns the Ed25519 signing key in dir/signing-key.pem, generating it (as
// PKCS#8 PEM, mode 0600, dir created 0700) on first start. Two processes starting at once
// end up with the same key: the file appears atomically and the loser loads the winner's.
func LoadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, KeyFileName)
	key, err := LoadKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("token: key directory: %w", err)
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := WriteKeyFile(path, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadKeyFile(path)
		}
		return nil, err
	}
	return key, nil
}

// WriteKeyFile writes key to path as PKCS#8 PEM with mode 0600. It never overwrites: an
// existing path gives an error matching fs.ErrExist. The file appears complete or not at all.
func WriteKeyFile(path string, key ed25519.PrivateKey) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: not an Ed25519 private key", ErrBadKey)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeNew writes data to a new file at path with mode: complete or not at all, and never
// over an existing file (an error matching fs.ErrExist).
func writeNew(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".signing-key-*")
	if err != nil {
		return fmt.Errorf("token: write key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("token: write key: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("token: write key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("token: write key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("token: write key: %w", err)
	}
	// Link fails if path exists: no overwrite, no half-written file.
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("token: write key: %w", err)
	}
	return nil
}

// LoadKeyFile reads an Ed25519 private key from a PKCS#8 PEM file ("PRIVATE KEY" block).
// Errors never include key material.
func LoadKeyFile(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token: read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s: want a PEM \"PRIVATE KEY\" (PKCS#8) block", ErrBadKey, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not PKCS#8", ErrBadKey, path)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s: %T, want Ed25519", ErrBadKey, path, k)
	}
	return key, nil
}
