package wsjson

import (
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
)

// A small strict JSON scanner (RFC 8259) for the inbound hot path. encoding/json allocates a
// string per field; a platform sends fifty media messages a second per call, so adapters read
// them in place instead: every value is a slice of the message, or of the scanner's scratch
// buffer when a string had escapes. The scanner validates what it skips, so a message it
// accepts is well-formed JSON.

// maxDepth bounds nesting in skipped values; the platforms' messages nest three deep.
const maxDepth = 16

// Scanner reads one JSON text in place. Strings with escapes are unescaped into its scratch
// buffer; their contents stay valid until Reset. The zero value is ready for Reset.
type Scanner struct {
	data    []byte
	pos     int
	scratch []byte
}

// Reset starts scanning data, reusing the scratch buffer.
func (s *Scanner) Reset(data []byte) {
	s.data, s.pos, s.scratch = data, 0, s.scratch[:0]
}

func (s *Scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// Peek returns the next non-space byte, or 0 at the end.
func (s *Scanner) Peek() byte {
	s.skipSpace()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// Consume skips c, the next non-space byte, and reports whether it was there.
func (s *Scanner) Consume(c byte) bool {
	if s.Peek() == c {
		s.pos++
		return true
	}
	return false
}

// End reports whether only white space is left.
func (s *Scanner) End() bool {
	s.skipSpace()
	return s.pos == len(s.data)
}

// Str reads a string and returns its unescaped bytes.
func (s *Scanner) Str() ([]byte, error) {
	if !s.Consume('"') {
		return nil, ErrSyntax
	}
	start := s.pos
	s.pos = plainRun(s.data, s.pos)
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			v := s.data[start:s.pos:s.pos]
			s.pos++
			return v, nil
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			return nil, ErrSyntax
		}
		s.pos++
	}
	return nil, ErrSyntax
}

// escaped finishes a string that has escapes, unescaping it into scratch.
func (s *Scanner) escaped(start int) ([]byte, error) {
	off := len(s.scratch)
	s.scratch = append(s.scratch, s.data[start:s.pos]...)
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return s.scratch[off:len(s.scratch):len(s.scratch)], nil
		case c < 0x20:
			return nil, ErrSyntax
		case c != '\\':
			s.scratch = append(s.scratch, c)
			s.pos++
			continue
		}
		s.pos++
		if s.pos >= len(s.data) {
			return nil, ErrSyntax
		}
		e := s.data[s.pos]
		s.pos++
		switch e {
		case '"', '\\', '/':
			s.scratch = append(s.scratch, e)
		case 'b':
			s.scratch = append(s.scratch, '\b')
		case 'f':
			s.scratch = append(s.scratch, '\f')
		case 'n':
			s.scratch = append(s.scratch, '\n')
		case 'r':
			s.scratch = append(s.scratch, '\r')
		case 't':
			s.scratch = append(s.scratch, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, ErrSyntax
			}
			if utf16.IsSurrogate(r) {
				// A high surrogate pairs with a following \uDC00-\uDFFF escape; anything
				// unpaired becomes U+FFFD, as encoding/json does.
				hi := r
				r = utf8.RuneError
				if save := s.pos; s.pos+1 < len(s.data) && s.data[s.pos] == '\\' && s.data[s.pos+1] == 'u' {
					s.pos += 2
					lo, ok := s.hex4()
					if d := utf16.DecodeRune(hi, lo); ok && d != utf8.RuneError {
						r = d
					} else {
						s.pos = save // the next escape stands alone
					}
				}
			}
			s.scratch = utf8.AppendRune(s.scratch, r)
		default:
			return nil, ErrSyntax
		}
	}
	return nil, ErrSyntax
}

// SWAR constants: every byte 0x01, every byte 0x80.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// plainRun skips, eight bytes at a time, the bytes of a string from i on that need no
// attention: no quote, no backslash, no control character. It returns where the first word
// holding one of those (or the last, partial word) starts; callers look at the rest bytewise.
// Most of a media message is its base64 payload, read this way.
func plainRun(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		q := w ^ ('"' * lsb)   // a zero byte where w has a quote
		bs := w ^ ('\\' * lsb) // a zero byte where w has a backslash
		// (x - lsb) &^ x & msb is non-zero exactly when x has a zero byte; with 0x20*lsb, when
		// x has a byte below 0x20.
		if ((q-lsb)&^q|(bs-lsb)&^bs|(w-0x20*lsb)&^w)&msb != 0 {
			break
		}
	}
	return i
}

func (s *Scanner) hex4() (rune, bool) {
	if s.pos+4 > len(s.data) {
		return 0, false
	}
	var r rune
	for _, c := range s.data[s.pos : s.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	s.pos += 4
	return r, true
}

// Key reads an object key and the colon after it.
func (s *Scanner) Key() ([]byte, error) {
	k, err := s.Str()
	if err != nil {
		return nil, err
	}
	if !s.Consume(':') {
		return nil, ErrSyntax
	}
	return k, nil
}

// Next moves to the next member of an object whose '{' has been consumed: it returns false at
// the closing '}'. first is true before the first member.
func (s *Scanner) Next(first bool) (bool, error) {
	if s.Consume('}') {
		return false, nil
	}
	if !first && !s.Consume(',') {
		return false, ErrSyntax
	}
	return true, nil
}

// Raw skips one value and returns its text.
func (s *Scanner) Raw() ([]byte, error) {
	s.skipSpace()
	start := s.pos
	if err := s.Skip(0); err != nil {
		return nil, err
	}
	return s.data[start:s.pos:s.pos], nil
}

// Skip validates and skips one value found at nesting depth.
func (s *Scanner) Skip(depth int) error {
	if depth > maxDepth {
		return ErrDepth
	}
	switch c := s.Peek(); {
	case c == '{':
		s.pos++
		for first := true; ; first = false {
			more, err := s.Next(first)
			if err != nil {
				return err
			}
			if !more {
				return nil
			}
			if _, err := s.Key(); err != nil {
				return err
			}
			if err := s.Skip(depth + 1); err != nil {
				return err
			}
		}
	case c == '[':
		s.pos++
		if s.Consume(']') {
			return nil
		}
		for {
			if err := s.Skip(depth + 1); err != nil {
				return err
			}
			if s.Consume(']') {
				return nil
			}
			if !s.Consume(',') {
				return ErrSyntax
			}
		}
	case c == '"':
		_, err := s.Str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return ErrSyntax
}

func (s *Scanner) literal(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return ErrSyntax
	}
	s.pos += len(lit)
	return nil
}

// number skips a number: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func (s *Scanner) number() error {
	if s.pos < len(s.data) && s.data[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.data) && s.data[s.pos] == '0':
		s.pos++
	case s.digits() == 0:
		return ErrSyntax
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			return ErrSyntax
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			return ErrSyntax
		}
	}
	return nil
}

func (s *Scanner) digits() int {
	n := 0
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
		n++
	}
	return n
}

// AppendString appends s as a JSON string literal, quotes included. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				switch c {
				case '\n':
					dst = append(dst, '\\', 'n')
				case '\r':
					dst = append(dst, '\\', 'r')
				case '\t':
					dst = append(dst, '\\', 't')
				default:
					dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
				}
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
