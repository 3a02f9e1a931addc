package wsaudio

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// Limits on the metadata a platform may send; beyond them the call ends with 1008.
const (
	MaxParams     = 32   // stream parameters kept in media.Start.Params
	MaxParamKey   = 64   // bytes
	MaxParamValue = 1024 // bytes
	MaxID         = 128  // bytes of a call id
)

// Object parses msg as a single JSON object into its members. Anything else is a 1007
// violation.
func Object(msg []byte) (map[string]json.RawMessage, error) {
	if t := bytes.TrimLeft(msg, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, Violate(CloseInvalid, "message is not a JSON object")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(msg, &obj); err != nil {
		return nil, Violate(CloseInvalid, "bad JSON: %s", jsonReason(err))
	}
	return obj, nil
}

// jsonReason describes a JSON error without quoting the input.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error at byte " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return "a " + te.Value + " where an object member was expected"
	}
	return "malformed"
}

// Str returns member key as a string: a JSON string, or the literal text of a JSON number.
// ok is false when the member is absent or null; any other type is a 1007 violation.
func Str(obj map[string]json.RawMessage, key string) (s string, ok bool, err error) {
	raw, present := obj[key]
	if !present {
		return "", false, nil
	}
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", false, nil
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, Violate(CloseInvalid, "member %s is not a valid string", Quote(key))
		}
		return s, true, nil
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", false, Violate(CloseInvalid, "member %s is not a valid number", Quote(key))
		}
		return n.String(), true, nil
	}
	return "", false, Violate(CloseInvalid, "member %s must be a string", Quote(key))
}

// FirstStr returns the first of keys present, as Str does.
func FirstStr(obj map[string]json.RawMessage, keys ...string) (string, bool, error) {
	for _, k := range keys {
		if s, ok, err := Str(obj, k); err != nil || ok {
			return s, ok, err
		}
	}
	return "", false, nil
}

// Params copies into dst the members of obj that are strings or numbers and for which keep
// returns true; other members are ignored. More than MaxParams parameters, or a key or value
// above its limit, is a 1008 violation.
func Params(dst map[string]string, obj map[string]json.RawMessage, keep func(key string) bool) error {
	for k, raw := range obj {
		if !keep(k) {
			continue
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] != '"' && raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
			continue // objects, arrays, booleans, null: not parameters
		}
		v, _, err := Str(obj, k)
		if err != nil {
			return err
		}
		if len(k) > MaxParamKey || len(v) > MaxParamValue {
			return Violate(ClosePolicy, "parameter %s is longer than %d bytes (key) or %d bytes (value)", Quote(k), MaxParamKey, MaxParamValue)
		}
		if _, dup := dst[k]; !dup && len(dst) == MaxParams {
			return Violate(ClosePolicy, "more than %d stream parameters", MaxParams)
		}
		dst[k] = v
	}
	return nil
}

// ValidID reports whether s can be a call id: 1 to MaxID bytes of letters, digits and
// ._:-+@ (ids reach logs and agent screens).
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:-+@", c) >= 0) {
			return false
		}
	}
	return true
}

// NewID returns prefix followed by 32 random hex digits, for a call whose platform gave none.
func NewID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Digit returns the DTMF key s names: one of 0-9, *, #, A-D.
func Digit(s string) (byte, bool) {
	if len(s) != 1 || strings.IndexByte("0123456789*#ABCD", s[0]) < 0 {
		return 0, false
	}
	return s[0], true
}

// Quote returns s quoted for a close reason or log line, cut to 32 bytes. Use it for protocol
// vocabulary (event and member names), never for values the caller typed.
func Quote(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// AppendString appends s as a JSON string.
func AppendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}
