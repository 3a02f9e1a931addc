package audiosocket

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// Frame kinds (Asterisk res/res_audiosocket.c, include/asterisk/res_audiosocket.h;
// telephony-protocols §6.1).
const (
	kindHangup byte = 0x00 // both ways; no payload
	kindUUID   byte = 0x01 // Asterisk → us, first frame, 16 bytes
	kindDTMF   byte = 0x03 // Asterisk → us, one ASCII digit
	kindSlin   byte = 0x10 // both ways, slin 8 kHz 16-bit little-endian mono
	kindError  byte = 0xff // Asterisk → us, optional one-byte code
)

const (
	headerLen = 3
	// maxPayload is the largest inbound payload accepted: 256 ms of slin, far above the
	// 320 bytes Asterisk sends per 20 ms frame. Larger frames are protocol errors.
	maxPayload = 4096
	// frameBytes is one 20 ms slin frame.
	frameBytes = 2 * 160
	// wireFrame is one outbound audio frame on the wire, header included.
	wireFrame = headerLen + frameBytes
)

// dtmfDigits are the digits a 0x03 frame may carry.
const dtmfDigits = "0123456789*#ABCD"

// protoError is a violation of the protocol by the peer. Its text never carries payload
// bytes beyond a frame kind and a length.
type protoError struct{ msg string }

func (e *protoError) Error() string { return e.msg }

func violation(format string, args ...any) *protoError {
	return &protoError{msg: fmt.Sprintf(format, args...)}
}

// frameReader reads TLV frames into a reused buffer. It allocates nothing per frame.
type frameReader struct {
	r   io.Reader
	hdr [headerLen]byte
	buf [maxPayload]byte
}

// next reads one frame. The payload aliases the reader's buffer until the next call. A frame
// longer than maxPayload is a *protoError (its payload is not read). A connection that ends
// inside a frame returns io.ErrUnexpectedEOF; one that ends between frames returns io.EOF.
func (f *frameReader) next() (kind byte, payload []byte, err error) {
	if _, err := io.ReadFull(f.r, f.hdr[:]); err != nil {
		return 0, nil, err
	}
	kind = f.hdr[0]
	n := int(binary.BigEndian.Uint16(f.hdr[1:]))
	if n > maxPayload {
		return kind, nil, violation("frame kind 0x%02x of %d bytes exceeds %d", kind, n, maxPayload)
	}
	payload = f.buf[:n]
	if _, err := io.ReadFull(f.r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return kind, nil, err
	}
	return kind, payload, nil
}

// checkFrame validates a frame from Asterisk. first is true for the connection's first frame,
// which must be the UUID. It returns a *protoError.
func checkFrame(kind byte, payload []byte, first bool) error {
	if first {
		if kind != kindUUID {
			return violation("first frame is kind 0x%02x, want the UUID (0x01)", kind)
		}
		if len(payload) != 16 {
			return violation("UUID frame of %d bytes, want 16", len(payload))
		}
		return nil
	}
	switch kind {
	case kindUUID:
		return violation("second UUID frame")
	case kindSlin:
		if len(payload) == 0 || len(payload)%2 != 0 {
			return violation("audio frame of %d bytes, want a non-zero even length", len(payload))
		}
	case kindDTMF:
		if len(payload) != 1 || strings.IndexByte(dtmfDigits, payload[0]) < 0 {
			return violation("DTMF frame is not one of 0-9, *, #, A-D")
		}
	case kindHangup, kindError:
	default:
		if kind >= 0x11 && kind <= 0x18 {
			return violation("audio frame kind 0x%02x (a sample rate above 8 kHz) is not supported: use AudioSocket's slin 8 kHz", kind)
		}
		return violation("unknown frame kind 0x%02x", kind)
	}
	return nil
}

// errorCause describes the code of a 0xff frame.
func errorCause(payload []byte) string {
	if len(payload) == 0 {
		return "no code"
	}
	c := payload[0]
	var parts []string
	if c&0x01 != 0 {
		parts = append(parts, "caller hung up")
	}
	if c&0x02 != 0 {
		parts = append(parts, "frame forwarding error")
	}
	if c&0x04 != 0 {
		parts = append(parts, "memory error")
	}
	if len(parts) == 0 {
		return fmt.Sprintf("code 0x%02x", c)
	}
	return fmt.Sprintf("code 0x%02x: %s", c, strings.Join(parts, ", "))
}

// appendFrame appends one frame to dst. payload must be at most 65535 bytes.
func appendFrame(dst []byte, kind byte, payload []byte) []byte {
	dst = append(dst, kind, byte(len(payload)>>8), byte(len(payload)))
	return append(dst, payload...)
}

// hangupFrame is the frame we send to end a call.
var hangupFrame = [headerLen]byte{kindHangup, 0, 0}

// NewUUID returns a random (version 4, RFC 9562 §5.4) UUID, for simulated calls.
func NewUUID() [16]byte {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// FormatUUID returns u in the canonical lower-case 8-4-4-4-12 form Asterisk's UUID()
// produces, which is the form Lookup and the registry use.
func FormatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return string(b[:])
}

// ParseUUID parses the 8-4-4-4-12 hexadecimal form (either case). Other forms return an error
// wrapping ErrBadUUID.
func ParseUUID(s string) ([16]byte, error) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("%w: want 8-4-4-4-12 hexadecimal digits", ErrBadUUID)
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := fromHex(s[i])
		lo, ok2 := fromHex(s[i+1])
		if !ok1 || !ok2 {
			return [16]byte{}, fmt.Errorf("%w: want 8-4-4-4-12 hexadecimal digits", ErrBadUUID)
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	return u, nil
}

func fromHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
