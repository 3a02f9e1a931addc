package kba

import (
	"fmt"
	"log/slog"

	"go.uber.org/zap/zapcore"
)

// Redacted is what every encoding of a Secret shows instead of its value.
const Redacted = "[redacted]"

// Secret holds a value that must never reach a log, a metric label, an error message or a
// response: a caller's keyed answer, a normalised answer, a passcode, a token. Every encoding
// redacts it: fmt (every verb, including %#v and %x), encoding/json, encoding.TextMarshaler
// users (YAML, XML, map keys), log/slog and zap (zap.Any, zap.Object, zap.Stringer,
// zap.Reflect). zap logs the length, which is allowed; nothing else.
//
// What redaction cannot stop is an explicit conversion: string(s) and s.Reveal() hand out the
// value, so do that only where the value is compared or sent to its one destination. Two
// encoders bypass the methods: fmt prints a Secret held in an unexported struct field raw, and
// encoding/json writes a map key of string kind raw. Keep secrets in exported fields or
// variables, and never key a map by one.
type Secret string

var (
	_ fmt.Formatter           = Secret("")
	_ fmt.Stringer            = Secret("")
	_ fmt.GoStringer          = Secret("")
	_ zapcore.ObjectMarshaler = Secret("")
	_ slog.LogValuer          = Secret("")
)

// Reveal returns the value. Call it only where the value is used, never to print it.
func (s Secret) Reveal() string { return string(s) }

// Len is the value's length in bytes, which may be logged.
func (s Secret) Len() int { return len(s) }

// String returns Redacted.
func (s Secret) String() string { return Redacted }

// GoString returns a redacted Go-syntax form, for %#v.
func (s Secret) GoString() string { return `kba.Secret("` + Redacted + `")` }

// Format writes Redacted for every verb, so %d, %x, %q and %+v redact too.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", Redacted)
	default:
		if verb == 'v' && f.Flag('#') {
			_, _ = f.Write([]byte(s.GoString()))
			return
		}
		_, _ = f.Write([]byte(Redacted))
	}
}

// MarshalJSON encodes the JSON string "[redacted]".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText returns Redacted, for encoders that use encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue redacts the value for log/slog.
func (s Secret) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("redacted", true), slog.Int("len", len(s)))
}

// MarshalLogObject redacts the value for zap: the field becomes {"redacted":true,"len":N}.
func (s Secret) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddBool("redacted", true)
	enc.AddInt("len", len(s))
	return nil
}
