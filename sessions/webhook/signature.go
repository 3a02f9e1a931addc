package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Request headers.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>",
	// exactly as the OTP delivery webhook (DESIGN.md).
	SignatureHeader = "Callproof-Signature"
	// IdempotencyHeader carries the event id (the token's jti), the same on every retry.
	IdempotencyHeader = "Idempotency-Key"
	// DefaultTolerance is VerifySignature's timestamp tolerance when given 0.
	DefaultTolerance = 5 * time.Minute
)

// Sign returns the Callproof-Signature value for body signed at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature checks a Callproof-Signature header against the raw body, for receivers.
// The header is comma-separated key=value pairs: exactly one t (unix seconds) and one or more
// v1 (several during a secret rotation); unknown keys are ignored. t must be within tolerance
// of now either way (0 means DefaultTolerance). MACs are compared in constant time. Every
// rejection wraps ErrSignature.
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return fmt.Errorf("%w: no secret configured", ErrSignature)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if len(header) > 4096 {
		return fmt.Errorf("%w: header too long", ErrSignature)
	}
	var ts string
	var sigs [][]byte
	for item := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return fmt.Errorf("%w: malformed header", ErrSignature)
		}
		switch k {
		case "t":
			if ts != "" || v == "" {
				return fmt.Errorf("%w: want exactly one timestamp", ErrSignature)
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: malformed v1 signature", ErrSignature)
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return fmt.Errorf("%w: want a timestamp and a v1 signature", ErrSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 || strconv.FormatInt(sec, 10) != ts {
		return fmt.Errorf("%w: malformed timestamp", ErrSignature)
	}
	if skew := now.Sub(time.Unix(sec, 0)).Abs(); skew > tolerance {
		return fmt.Errorf("%w: timestamp is %v from now, beyond the %v tolerance", ErrSignature, skew.Round(time.Second), tolerance)
	}
	want := mac(secret, ts, body)
	ok := 0
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			ok = 1
		}
	}
	if ok == 0 {
		return fmt.Errorf("%w: no v1 signature matches", ErrSignature)
	}
	return nil
}
