package wsjson

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Violation is a peer's breach of the protocol: the close code and reason its call ends with.
// Reasons never quote what the caller keyed.
type Violation struct {
	Code   int
	Reason string
}

func (v *Violation) Error() string { return v.Reason }

// Violationf returns a violation with code and a formatted reason.
func Violationf(code int, format string, args ...any) *Violation {
	return &Violation{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Close codes (RFC 6455 §7.4.1) for the violations adapters detect.
const (
	CloseUnsupported = websocket.CloseUnsupportedData         // 1003: binary frame
	CloseInvalid     = websocket.CloseInvalidFramePayloadData // 1007: malformed data
	ClosePolicy      = websocket.ClosePolicyViolation         // 1008: not allowed here
	CloseTooBig      = websocket.CloseMessageTooBig           // 1009: over the read limit
)

// MaxCloseReason is the room for a reason in a close frame (RFC 6455 §5.5: 125 bytes of
// payload, two of them the code).
const MaxCloseReason = 123

// TruncReason cuts s to fit a close frame, at a rune boundary.
func TruncReason(s string) string {
	if len(s) <= MaxCloseReason {
		return s
	}
	s = s[:MaxCloseReason]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// badJSON maps a Scanner error to a 1007 violation, passing violations through.
func badJSON(err error) error {
	var v *Violation
	switch {
	case errors.As(err, &v):
		return v
	case errors.Is(err, ErrDepth):
		return Violationf(CloseInvalid, "bad JSON: JSON nested too deep")
	}
	return Violationf(CloseInvalid, "bad JSON: invalid JSON")
}

// Keys names a dialect's top-level members besides "event" and the start, media, dtmf, mark
// and stop objects, which every dialect shares.
type Keys struct {
	// Seq and StreamID are the sequence number and stream id members: "sequenceNumber" and
	// "streamSid" for Twilio, "sequence_number" and "stream_id" for Telnyx.
	Seq, StreamID string
	// Extra names one further top-level object the dialect reads into Message.Extra (Telnyx's
	// error frames carry "payload"); "" for none.
	Extra string
}

// Message is the top level of one inbound message, parsed in place: every field is a slice of
// the message or of the parser's scratch space, valid until the next Parse.
type Message struct {
	Event, Seq, StreamID          []byte
	HasEvent, HasSeq, HasStreamID bool
	// Raw JSON objects; nil when absent.
	Start, Media, DTMF, Mark, Stop, Extra []byte
}

// Parser reads inbound messages without allocating once its scratch buffers have grown. Its
// methods are for one goroutine (the leg's reader).
type Parser struct {
	Keys Keys
	top  Scanner // the message
	sub  Scanner // one nested object

	// The media object as Parse read it on its way through the message, so that ReadMedia
	// need not scan it again: valid when mediaOK, for the object text mediaRaw.
	mediaOK  bool
	mediaRaw []byte
	mf       mediaFields
}

// Parse fills m from data, a text message. The only errors are 1007 violations.
func (p *Parser) Parse(data []byte, m *Message) error {
	*m = Message{}
	p.mediaOK = false
	if !utf8.Valid(data) {
		return Violationf(CloseInvalid, "text message is not UTF-8")
	}
	s := &p.top
	s.Reset(data)
	if !s.Consume('{') {
		return Violationf(CloseInvalid, "message is not a JSON object")
	}
	for first := true; ; first = false {
		more, err := s.Next(first)
		if err != nil {
			return badJSON(err)
		}
		if !more {
			break
		}
		k, err := s.Key()
		if err != nil {
			return badJSON(err)
		}
		// Comparisons with string(k) do not allocate; a variable holding it might.
		switch {
		case string(k) == "event":
			m.Event, m.HasEvent, err = p.topString(k)
		case string(k) == p.Keys.Seq:
			m.Seq, m.HasSeq, err = p.topString(k)
		case string(k) == p.Keys.StreamID:
			m.StreamID, m.HasStreamID, err = p.topString(k)
		case string(k) == "start":
			m.Start, err = p.object(k)
		case string(k) == "media":
			m.Media, err = p.mediaObject(k)
		case string(k) == "dtmf":
			m.DTMF, err = p.object(k)
		case string(k) == "mark":
			m.Mark, err = p.object(k)
		case string(k) == "stop":
			m.Stop, err = p.object(k)
		case p.Keys.Extra != "" && string(k) == p.Keys.Extra:
			m.Extra, err = p.object(k)
		default:
			err = s.Skip(1)
		}
		if err != nil {
			return badJSON(err)
		}
	}
	if !s.End() {
		return Violationf(CloseInvalid, "bad JSON: data after the message")
	}
	return nil
}

func (p *Parser) topString(key []byte) ([]byte, bool, error) {
	if p.top.Peek() != '"' {
		if err := p.top.Skip(1); err != nil {
			return nil, false, err
		}
		return nil, false, Violationf(CloseInvalid, "%s must be a string", key)
	}
	v, err := p.top.Str()
	return v, err == nil, err
}

func (p *Parser) object(key []byte) ([]byte, error) {
	if p.top.Peek() != '{' {
		if err := p.top.Skip(1); err != nil {
			return nil, err
		}
		return nil, Violationf(CloseInvalid, "%s must be an object", key)
	}
	return p.top.Raw()
}

// mediaObject reads the media object like object, and its members too when they are the
// strings a media message carries; ReadMedia then uses them as read. Anything else leaves the
// object to be read again by ReadMedia, which names the problem.
func (p *Parser) mediaObject(key []byte) ([]byte, error) {
	s := &p.top
	if s.Peek() != '{' {
		return p.object(key)
	}
	start, scratch := s.pos, len(s.scratch)
	f := &p.mf
	*f = mediaFields{}
	s.pos++
scan:
	for first := true; ; first = false {
		more, err := s.Next(first)
		if err != nil {
			break
		}
		if !more {
			p.mediaOK, p.mediaRaw = true, s.data[start:s.pos:s.pos]
			return p.mediaRaw, nil
		}
		k, err := s.Key()
		if err != nil {
			break
		}
		var v *[]byte
		switch string(k) {
		case "track":
			v = &f.Track
		case "chunk":
			v, f.HasChunk = &f.Chunk, true
		case "timestamp":
			v, f.HasTimestamp = &f.Timestamp, true
		case "payload":
			v, f.HasPayload = &f.Payload, true
		default:
			if s.Skip(2) != nil {
				break scan
			}
			continue
		}
		if s.Peek() != '"' {
			break
		}
		if *v, err = s.Str(); err != nil {
			break
		}
	}
	s.pos, s.scratch = start, s.scratch[:scratch] // read it the slow way
	return p.object(key)
}

// Fields iterates over the members of the nested object raw, calling fn with each key and the
// scanner positioned at its value; fn must consume the value. Errors come back as violations.
func (p *Parser) Fields(raw []byte, fn func(key []byte, s *Scanner) error) error {
	s := &p.sub
	s.Reset(raw)
	if !s.Consume('{') {
		return Violationf(CloseInvalid, "bad JSON: want an object")
	}
	for first := true; ; first = false {
		more, err := s.Next(first)
		if err != nil {
			return badJSON(err)
		}
		if !more {
			return nil
		}
		k, err := s.Key()
		if err != nil {
			return badJSON(err)
		}
		if err := fn(k, s); err != nil {
			return badJSON(err)
		}
	}
}

// StringValue reads a string member of a nested object; obj and key name it in the error.
func StringValue(s *Scanner, obj string, key []byte) ([]byte, error) {
	if s.Peek() != '"' {
		return nil, Violationf(CloseInvalid, "%s.%s must be a string", obj, key)
	}
	return s.Str()
}

// StringMember reads the string member name of a nested object (dtmf.digit, mark.name),
// skipping the others. ok is false when it is absent.
func (p *Parser) StringMember(raw []byte, obj, name string) (v []byte, ok bool, err error) {
	err = p.Fields(raw, func(k []byte, s *Scanner) error {
		if string(k) != name {
			return s.Skip(1)
		}
		var e error
		v, e = StringValue(s, obj, k)
		ok = e == nil
		return e
	})
	return v, ok, err
}

// mediaFields is a media message's body; both dialects name its members alike.
type mediaFields struct {
	Track, Chunk, Timestamp, Payload   []byte
	HasChunk, HasTimestamp, HasPayload bool
}

// media reads the media object raw into f.
func (p *Parser) media(raw []byte, f *mediaFields) error {
	if p.mediaOK && len(raw) == len(p.mediaRaw) && len(raw) > 0 && &raw[0] == &p.mediaRaw[0] {
		*f = p.mf // Parse read it already
		return nil
	}
	*f = mediaFields{}
	return p.Fields(raw, func(k []byte, s *Scanner) (err error) {
		switch string(k) {
		case "track":
			f.Track, err = StringValue(s, "media", k)
		case "chunk":
			f.Chunk, err = StringValue(s, "media", k)
			f.HasChunk = err == nil
		case "timestamp":
			f.Timestamp, err = StringValue(s, "media", k)
			f.HasTimestamp = err == nil
		case "payload":
			f.Payload, err = StringValue(s, "media", k)
			f.HasPayload = err == nil
		default:
			err = s.Skip(1)
		}
		return err
	})
}

// StringMap reads a flat object of strings (custom parameters); obj names it in errors. It is
// read once per call and allocates.
func StringMap(s *Scanner, obj string) (map[string]string, error) {
	if !s.Consume('{') {
		return nil, Violationf(CloseInvalid, "%s must be an object", obj)
	}
	m := make(map[string]string)
	for first := true; ; first = false {
		more, err := s.Next(first)
		if err != nil || !more {
			return m, err
		}
		k, err := s.Key()
		if err != nil {
			return nil, err
		}
		key := string(k) // k may live in scratch, which the value read can grow
		v, err := StringValue(s, obj, k)
		if err != nil {
			return nil, err
		}
		m[key] = string(v)
	}
}

// Format is a start message's media format.
type Format struct {
	Encoding             string
	SampleRate, Channels int64
}

// ReadFormat reads a media format object {encoding, <rateKey>, channels}; obj names it in
// errors ("start.mediaFormat").
func ReadFormat(s *Scanner, obj, rateKey string, f *Format) error {
	if !s.Consume('{') {
		return Violationf(CloseInvalid, "%s must be an object", obj)
	}
	for first := true; ; first = false {
		more, err := s.Next(first)
		if err != nil || !more {
			return err
		}
		k, err := s.Key()
		if err != nil {
			return err
		}
		switch name := string(k); name {
		case "encoding":
			v, err := StringValue(s, obj, k)
			if err != nil {
				return err
			}
			f.Encoding = string(v)
		case rateKey, "channels":
			v, err := s.Raw()
			if err != nil {
				return err
			}
			n, err := strconv.ParseInt(string(v), 10, 32)
			if err != nil {
				return Violationf(CloseInvalid, "%s.%s must be an integer", obj, name)
			}
			if name == rateKey {
				f.SampleRate = n
			} else {
				f.Channels = n
			}
		default:
			if err := s.Skip(1); err != nil {
				return err
			}
		}
	}
}

// ParseCounter parses one of the platforms' string counters ("1", "20", ...): decimal digits
// only, no sign, at most 18 of them.
func ParseCounter(b []byte) (uint64, bool) {
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

// ValidID reports whether a platform id (Twilio CA…/MZ…, Telnyx v3:… call control ids and
// UUIDs) is safe to echo and log: 1 to 128 of [A-Za-z0-9._:-].
func ValidID(s string) bool {
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

// DecodeBase64 decodes a base64 media payload into dst, growing it as needed, and returns the
// bytes. field names the member in errors ("media.payload"). The payload must be padded
// standard base64 (RFC 4648 §4) with nothing else in it: no line breaks (which encoding/base64
// would skip) and no non-zero padding bits (its Strict mode).
func DecodeBase64(dst *[]byte, payload []byte, field string) ([]byte, error) {
	if len(payload) == 0 {
		return nil, Violationf(CloseInvalid, "%s is empty", field)
	}
	if len(payload)%4 != 0 {
		return nil, Violationf(CloseInvalid, "%s is not padded base64", field)
	}
	n := len(payload) / 4 * 3
	if cap(*dst) < n {
		*dst = make([]byte, n)
	}
	m, ok := decodeStrict((*dst)[:n], payload)
	if !ok {
		return nil, Violationf(CloseInvalid, "%s is not base64", field)
	}
	return (*dst)[:m], nil
}

// b64Values maps each byte to its value in the standard base64 alphabet, or 0xff.
var b64Values = func() (t [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// decodeStrict decodes src, whose length is a multiple of four, into dst (room for
// len(src)/4*3 bytes) and returns the bytes written. It accepts exactly what
// base64.StdEncoding.Strict() accepts from text without line breaks.
func decodeStrict(dst, src []byte) (int, bool) {
	t := &b64Values
	di := 0
	last := len(src) - 4
	for si := 0; si < last; si += 4 { // every quantum but the last: four alphabet characters
		q := src[si : si+4 : si+4]
		a, b, c, d := t[q[0]], t[q[1]], t[q[2]], t[q[3]]
		if (a|b|c|d)&0xc0 != 0 {
			return 0, false
		}
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		o := dst[di : di+3 : di+3]
		o[0], o[1], o[2] = byte(v>>16), byte(v>>8), byte(v)
		di += 3
	}
	q := src[last : last+4 : last+4] // the last: "xxxx", "xxx=" or "xx==", spare bits zero
	a, b := t[q[0]], t[q[1]]
	if (a|b)&0xc0 != 0 {
		return 0, false
	}
	switch {
	case q[2] == '=' && q[3] == '=':
		if b&0x0f != 0 {
			return 0, false
		}
		dst[di] = a<<2 | b>>4
		return di + 1, true
	case q[3] == '=':
		c := t[q[2]]
		if c&0xc0 != 0 || c&0x03 != 0 {
			return 0, false
		}
		dst[di], dst[di+1] = a<<2|b>>4, b<<4|c>>2
		return di + 2, true
	}
	c, d := t[q[2]], t[q[3]]
	if (c|d)&0xc0 != 0 {
		return 0, false
	}
	v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
	dst[di], dst[di+1], dst[di+2] = byte(v>>16), byte(v>>8), byte(v)
	return di + 3, true
}

// QuoteName formats a peer-supplied name (event, mark) for a close reason: quoted, at most 24
// bytes of it.
func QuoteName(b []byte) string {
	if len(b) > 24 {
		return strconv.Quote(string(b[:24])) + "…"
	}
	return strconv.Quote(string(b))
}

// Digit reports whether d is one DTMF key ("0"-"9", "*", "#", "A"-"D") and returns it.
func Digit(d []byte) (byte, bool) {
	if len(d) != 1 {
		return 0, false
	}
	switch c := d[0]; {
	case c >= '0' && c <= '9', c == '*', c == '#', c >= 'A' && c <= 'D':
		return c, true
	}
	return 0, false
}
