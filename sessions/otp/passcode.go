package otp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"go.uber.org/zap/zapcore"
)

// Redacted is what every encoding of a Passcode shows instead of its value.
const Redacted = "[redacted]"

// Passcode is a one-time code. Every encoding redacts it: fmt (every verb), encoding/json,
// encoding.TextMarshaler users, log/slog and zap (which log its length). Reveal hands out the
// value; senders call it only to write the message they deliver.
type Passcode string

var (
	_ fmt.Formatter           = Passcode("")
	_ fmt.Stringer            = Passcode("")
	_ fmt.GoStringer          = Passcode("")
	_ zapcore.ObjectMarshaler = Passcode("")
	_ slog.LogValuer          = Passcode("")
)

// Reveal returns the digits. Call it only where the code is delivered.
func (p Passcode) Reveal() string { return string(p) }

// Len is the number of digits, which may be logged.
func (p Passcode) Len() int { return len(p) }

// String returns Redacted.
func (p Passcode) String() string { return Redacted }

// GoString returns a redacted Go-syntax form, for %#v.
func (p Passcode) GoString() string { return `otp.Passcode("` + Redacted + `")` }

// Format writes Redacted for every verb.
func (p Passcode) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'q':
		fmt.Fprintf(f, "%q", Redacted)
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, p.GoString())
	default:
		_, _ = io.WriteString(f, Redacted)
	}
}

// MarshalJSON encodes the JSON string "[redacted]".
func (p Passcode) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText returns Redacted.
func (p Passcode) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue redacts the code for log/slog.
func (p Passcode) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("redacted", true), slog.Int("len", len(p)))
}

// MarshalLogObject redacts the code for zap: {"redacted":true,"len":N}.
func (p Passcode) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddBool("redacted", true)
	enc.AddInt("len", len(p))
	return nil
}

// maxReads bounds generate's reads: a working source needs one 16-byte read almost always
// (each byte is rejected with probability 6/256), so reaching 64 means it is broken.
const maxReads = 64

// generate returns digits decimal digits, each uniform over 0-9, from r (a CSPRNG; nil means
// crypto/rand.Reader). Each digit comes from one byte by rejection sampling: bytes 250-255
// are discarded so that b%10 is exactly uniform. Leading zeros are kept.
func generate(r io.Reader, digits int) (Passcode, error) {
	if r == nil {
		r = rand.Reader
	}
	code := make([]byte, 0, digits)
	var buf [16]byte
	for reads := 0; len(code) < digits; reads++ {
		if reads == maxReads {
			return "", errors.New("otp: generate passcode: random source keeps giving bytes 250-255")
		}
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", fmt.Errorf("otp: generate passcode: %w", err)
		}
		for _, b := range buf {
			if b >= 250 { // 250 = 25*10: keep 0..249 so b%10 is uniform
				continue
			}
			code = append(code, '0'+b%10)
			if len(code) == digits {
				break
			}
		}
	}
	return Passcode(code), nil
}

// maxKeyed bounds what Check feeds the MAC, so that the work does not grow with the entry.
const maxKeyed = 32

// normalizeKeyed strips one trailing '#' (the terminator the caller presses) and returns ""
// for anything that is not 1 to 32 digits; "" never matches a stored MAC.
func normalizeKeyed(keyed string) string {
	if n := len(keyed); n > 0 && keyed[n-1] == '#' {
		keyed = keyed[:n-1]
	}
	if len(keyed) == 0 || len(keyed) > maxKeyed {
		return ""
	}
	for i := 0; i < len(keyed); i++ {
		if keyed[i] < '0' || keyed[i] > '9' {
			return ""
		}
	}
	return keyed
}

// mac returns HMAC-SHA256(key, subject || 0x00 || code). The separator keeps (subject, code)
// pairs unambiguous whatever the subject's length.
func mac(key []byte, subject, code string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(subject))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}
