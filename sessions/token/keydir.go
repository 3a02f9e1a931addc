package token

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// KeyDir is what a key directory holds: the key that signs, and the public keys of every
// other key the JWKS must list (see LoadKeyDir and the rotation procedure in the package doc).
type KeyDir struct {
	// Signing is the private key that signs new tokens.
	Signing ed25519.PrivateKey
	// SigningFile is its file name, for logs.
	SigningFile string
	// Verification are the public halves of the other keys, in file name order: former
	// signing keys whose tokens may still be live, and keys published ahead of use.
	Verification []ed25519.PublicKey
}

// LoadKeyDir loads every key in dir: each regular file whose name ends in ".pem" (names
// starting with "." are ignored) must hold one PEM block, either an Ed25519 private key
// ("PRIVATE KEY", PKCS#8, RFC 8410) or an Ed25519 public key ("PUBLIC KEY", PKIX). Naming
// rule: of the private keys, the one whose file name sorts last (byte order) signs; name
// files by the date they start signing, such as 2025-06-01.pem. Every other key, private or
// public, is only published for verification. A file that is not such a key, or a directory
// with no private key, is an error (ErrBadKey): a node must not start with keys other than
// the operator meant. File modification times play no part: they change on copy and restore
// and differ between nodes, names do not.
func LoadKeyDir(dir string) (*KeyDir, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("token: key directory: %w", err)
	}
	type loaded struct {
		name string
		priv ed25519.PrivateKey
		pub  ed25519.PublicKey
	}
	var keys []loaded
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".pem") || !e.Type().IsRegular() {
			continue
		}
		priv, pub, err := readKey(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		keys = append(keys, loaded{name, priv, pub})
	}
	slices.SortFunc(keys, func(a, b loaded) int { return strings.Compare(a.name, b.name) })
	kd := &KeyDir{}
	signer := -1
	for i, k := range keys {
		if k.priv != nil {
			signer = i
		}
	}
	if signer < 0 {
		return nil, fmt.Errorf("%w: %s holds no private key (*.pem, PKCS#8 Ed25519)", ErrBadKey, dir)
	}
	kd.Signing, kd.SigningFile = keys[signer].priv, keys[signer].name
	for i, k := range keys {
		if i != signer {
			kd.Verification = append(kd.Verification, k.pub)
		}
	}
	return kd, nil
}

// Options returns the Signer options that publish kd's verification keys:
// NewSigner(kd.Signing, cfg, kd.Options()...).
func (kd *KeyDir) Options() []Option {
	return []Option{WithVerificationKeys(kd.Verification...)}
}

// readKey reads an Ed25519 private or public key from a PEM file. Errors never include
// key material.
func readKey(path string) (ed25519.PrivateKey, ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("token: read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, nil, fmt.Errorf("%w: %s: no PEM block", ErrBadKey, path)
	}
	switch block.Type {
	case "PRIVATE KEY":
		priv, err := LoadKeyFile(path)
		if err != nil {
			return nil, nil, err
		}
		return priv, priv.Public().(ed25519.PublicKey), nil
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: not a PKIX public key", ErrBadKey, path)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, nil, fmt.Errorf("%w: %s: %T, want Ed25519", ErrBadKey, path, k)
		}
		return nil, pub, nil
	default:
		return nil, nil, fmt.Errorf("%w: %s: PEM block %q, want \"PRIVATE KEY\" or \"PUBLIC KEY\"", ErrBadKey, path, block.Type)
	}
}

// WritePublicKeyFile writes pub to path as a PKIX "PUBLIC KEY" PEM file (mode 0644), to
// publish a key before it signs (rotation step 1). Like WriteKeyFile it never overwrites.
func WritePublicKeyFile(path string, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: not an Ed25519 public key", ErrBadKey)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
}
