package kba

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"time"
)

// TOTP (RFC 6238) with the parameters authenticator apps use: HMAC-SHA1, 30-second steps,
// 6 digits. The secret is the customer's totp_secret (Customer.TOTPKey).
const (
	TOTPStep   = 30 * time.Second
	TOTPDigits = 6
	// TOTPSkew is how many steps either side of now a code may come from (RFC 6238 §5.2
	// recommends at most one step of network delay).
	TOTPSkew = 1
)

// TOTPCode returns the code for counter step (RFC 4226 §5.3 dynamic truncation).
func TOTPCode(key []byte, step int64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0F
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7FFFFFFF
	mod := uint32(1)
	for i := 0; i < digits; i++ {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// TOTPStepAt is the RFC 6238 time step counter for t (T0 = 0).
func TOTPStepAt(t time.Time) int64 { return t.Unix() / int64(TOTPStep/time.Second) }

// CheckTOTP reports whether keyed is the code for now or a step either side, and which step
// matched. Every candidate is compared in constant time. The caller must refuse a step already
// used (RFC 6238 §5.2: a verifier must not accept the same code twice); see the Replay store.
func CheckTOTP(key []byte, keyed string, now time.Time) (step int64, ok bool) {
	if len(keyed) != TOTPDigits || len(key) == 0 {
		return 0, false
	}
	cur := TOTPStepAt(now)
	for s := cur - TOTPSkew; s <= cur+TOTPSkew; s++ {
		if subtle.ConstantTimeCompare([]byte(TOTPCode(key, s, TOTPDigits)), []byte(keyed)) == 1 && !ok {
			step, ok = s, true
		}
	}
	return step, ok
}
