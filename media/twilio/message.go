package twilio

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/gorilla/websocket"
)

// protoError is a peer's violation of the protocol: the close code and reason the call ends
// with. Reasons never quote what the caller keyed.
type protoError struct {
	code int
	msg  string
}

func (e *protoError) Error() string { return e.msg }

func violation(code int, format string, args ...any) *protoError {
	return &protoError{code: code, msg: fmt.Sprintf(format, args...)}
}

// Close codes (RFC 6455 §7.4.1) for the violations the adapter detects.
const (
	closeUnsupported = websocket.CloseUnsupportedData         // 1003: binary frame
	closeInvalid     = websocket.CloseInvalidFramePayloadData // 1007: malformed data
	closePolicy      = websocket.ClosePolicyViolation         // 1008: not allowed here
	closeTooBig      = websocket.CloseMessageTooBig           // 1009: over ReadLimit
)

// inbound is the top level of one message from Twilio, parsed in place: every field is a
// slice of the message or of the parser's scratch space, valid until the next message.
type inbound struct {
	event, seq, streamSid          []byte
	hasEvent, hasSeq, hasSid       bool
	start, media, dtmf, mark, stop []byte // raw JSON objects; nil when absent
}

// parser reads inbound messages without allocating once its scratch buffers have grown.
type parser struct {
	top scanner // the message
	sub scanner // one nested object
}

// parse fills m from data. The only error is a 1007 violation.
func (p *parser) parse(data []byte, m *inbound) error {
	*m = inbound{}
	s := &p.top
	s.reset(data)
	if !s.consume('{') {
		return violation(closeInvalid, "message is not a JSON object")
	}
	for first := true; ; first = false {
		more, err := s.next(first)
		if err != nil {
			return badJSON(err)
		}
		if !more {
			break
		}
		k, err := s.key()
		if err != nil {
			return badJSON(err)
		}
		switch string(k) {
		case "event":
			m.event, m.hasEvent, err = p.topString(k)
		case "sequenceNumber":
			m.seq, m.hasSeq, err = p.topString(k)
		case "streamSid":
			m.streamSid, m.hasSid, err = p.topString(k)
		case "start":
			m.start, err = p.object(k)
		case "media":
			m.media, err = p.object(k)
		case "dtmf":
			m.dtmf, err = p.object(k)
		case "mark":
			m.mark, err = p.object(k)
		case "stop":
			m.stop, err = p.object(k)
		default:
			err = s.skip(1)
		}
		if err != nil {
			return badJSON(err)
		}
	}
	if !s.end() {
		return violation(closeInvalid, "bad JSON: data after the message")
	}
	return nil
}

// badJSON maps a scanner error to a 1007 violation, passing violations through.
func badJSON(err error) error {
	if _, ok := err.(*protoError); ok {
		return err
	}
	return violation(closeInvalid, "bad JSON: %v", err)
}

func (p *parser) topString(key []byte) ([]byte, bool, error) {
	if p.top.peek() != '"' {
		if err := p.top.skip(1); err != nil {
			return nil, false, err
		}
		return nil, false, violation(closeInvalid, "%s must be a string", key)
	}
	v, err := p.top.str()
	return v, err == nil, err
}

func (p *parser) object(key []byte) ([]byte, error) {
	if p.top.peek() != '{' {
		if err := p.top.skip(1); err != nil {
			return nil, err
		}
		return nil, violation(closeInvalid, "%s must be an object", key)
	}
	return p.top.raw()
}

// fields iterates over the members of the nested object raw, calling fn with each key and the
// sub scanner positioned at its value; fn must consume the value.
func (p *parser) fields(raw []byte, fn func(key []byte, s *scanner) error) error {
	s := &p.sub
	s.reset(raw)
	if !s.consume('{') {
		return violation(closeInvalid, "bad JSON: want an object")
	}
	for first := true; ; first = false {
		more, err := s.next(first)
		if err != nil {
			return badJSON(err)
		}
		if !more {
			return nil
		}
		k, err := s.key()
		if err != nil {
			return badJSON(err)
		}
		if err := fn(k, s); err != nil {
			return badJSON(err)
		}
	}
}

// stringValue reads a string member of a nested object; obj and key name it in the error.
func stringValue(s *scanner, obj string, key []byte) ([]byte, error) {
	if s.peek() != '"' {
		return nil, violation(closeInvalid, "%s.%s must be a string", obj, key)
	}
	return s.str()
}

// mediaFields is a "media" message's body.
type mediaFields struct {
	track, chunk, timestamp, payload   []byte
	hasChunk, hasTimestamp, hasPayload bool
}

func (p *parser) parseMedia(raw []byte, f *mediaFields) error {
	return p.fields(raw, func(k []byte, s *scanner) (err error) {
		switch string(k) {
		case "track":
			f.track, err = stringValue(s, "media", k)
		case "chunk":
			f.chunk, err = stringValue(s, "media", k)
			f.hasChunk = err == nil
		case "timestamp":
			f.timestamp, err = stringValue(s, "media", k)
			f.hasTimestamp = err == nil
		case "payload":
			f.payload, err = stringValue(s, "media", k)
			f.hasPayload = err == nil
		default:
			err = s.skip(1)
		}
		return err
	})
}

// stringMember reads the string member name of a nested object (dtmf.digit, mark.name),
// skipping the others. ok is false when it is absent.
func (p *parser) stringMember(raw []byte, obj, name string) (v []byte, ok bool, err error) {
	err = p.fields(raw, func(k []byte, s *scanner) error {
		if string(k) != name {
			return s.skip(1)
		}
		var e error
		v, e = stringValue(s, obj, k)
		ok = e == nil
		return e
	})
	return v, ok, err
}

// startFields is a "start" message's body. It is parsed once per call and may allocate.
type startFields struct {
	streamSid, accountSid, callSid string
	params                         map[string]string
	encoding                       string
	sampleRate, channels           int64
}

func (p *parser) parseStart(raw []byte) (*startFields, error) {
	f := &startFields{}
	err := p.fields(raw, func(k []byte, s *scanner) error {
		switch string(k) {
		case "streamSid", "accountSid", "callSid":
			v, err := stringValue(s, "start", k)
			if err != nil {
				return err
			}
			switch string(k) {
			case "streamSid":
				f.streamSid = string(v)
			case "accountSid":
				f.accountSid = string(v)
			default:
				f.callSid = string(v)
			}
			return nil
		case "customParameters":
			return p.parseParams(s, f)
		case "mediaFormat":
			return parseFormat(s, f)
		}
		return s.skip(1)
	})
	return f, err
}

// parseParams reads customParameters, a flat object of strings.
func (p *parser) parseParams(s *scanner, f *startFields) error {
	if !s.consume('{') {
		return violation(closeInvalid, "start.customParameters must be an object")
	}
	f.params = make(map[string]string)
	for first := true; ; first = false {
		more, err := s.next(first)
		if err != nil || !more {
			return err
		}
		k, err := s.key()
		if err != nil {
			return err
		}
		key := string(k) // k may live in scratch, which the value read can grow
		v, err := stringValue(s, "start.customParameters", k)
		if err != nil {
			return err
		}
		f.params[key] = string(v)
	}
}

// parseFormat reads mediaFormat {encoding, sampleRate, channels}.
func parseFormat(s *scanner, f *startFields) error {
	if !s.consume('{') {
		return violation(closeInvalid, "start.mediaFormat must be an object")
	}
	for first := true; ; first = false {
		more, err := s.next(first)
		if err != nil || !more {
			return err
		}
		k, err := s.key()
		if err != nil {
			return err
		}
		switch string(k) {
		case "encoding":
			v, err := stringValue(s, "start.mediaFormat", k)
			if err != nil {
				return err
			}
			f.encoding = string(v)
		case "sampleRate", "channels":
			name := string(k)
			v, err := s.raw()
			if err != nil {
				return err
			}
			n, err := strconv.ParseInt(string(v), 10, 32)
			if err != nil {
				return violation(closeInvalid, "start.mediaFormat.%s must be an integer", name)
			}
			if name == "sampleRate" {
				f.sampleRate = n
			} else {
				f.channels = n
			}
		default:
			if err := s.skip(1); err != nil {
				return err
			}
		}
	}
}

// parseCounter parses one of Twilio's string counters ("1", "20", ...): decimal digits only,
// no sign, at most 18 of them.
func parseCounter(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// validSid reports whether a Twilio id (CA…, MZ…; other platforms' UUIDs) is safe to echo and
// log: 1 to 128 of [A-Za-z0-9._:-].
func validSid(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// b64 decodes padded standard base64 strictly: no line breaks (which encoding/base64 would
// skip), no non-zero padding bits.
var b64 = base64.StdEncoding.Strict()

// decodePayload decodes a media payload into dst, growing it as needed, and returns the
// μ-law bytes.
func decodePayload(dst *[]byte, payload []byte) ([]byte, error) {
	if len(payload) == 0 {
		return nil, violation(closeInvalid, "media.payload is empty")
	}
	if len(payload)%4 != 0 {
		return nil, violation(closeInvalid, "media.payload is not padded base64")
	}
	for _, c := range payload {
		if c == '\r' || c == '\n' {
			return nil, violation(closeInvalid, "media.payload is not base64")
		}
	}
	n := b64.DecodedLen(len(payload))
	if cap(*dst) < n {
		*dst = make([]byte, n)
	}
	m, err := b64.Decode((*dst)[:n], payload)
	if err != nil {
		return nil, violation(closeInvalid, "media.payload is not base64")
	}
	return (*dst)[:m], nil
}

// quoteName formats a peer-supplied name (event, mark) for a close reason: quoted, at most
// 24 bytes of it.
func quoteName(b []byte) string {
	if len(b) > 24 {
		return strconv.Quote(string(b[:24])) + "…"
	}
	return strconv.Quote(string(b))
}
