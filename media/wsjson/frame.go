package wsjson

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// The server's side of WebSocket framing (RFC 6455 §5) for a stream once gorilla/websocket has
// done the opening handshake. A platform sends fifty small messages a second per call; reading
// them through gorilla costs an allocation per message (its message reader) and a copy, and
// gorilla keeps a write buffer per connection large enough for a one-second prompt message.
// Here a message that arrives in one frame is unmasked and parsed where it lies in the
// connection's read buffer (the one net/http read the request with), and every outbound
// message is one system call from a buffer shared through a pool.

// Opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

const (
	finBit  = 0x80
	maskBit = 0x80
	rsvBits = 0x70
	// MaxHeader is the room a server frame's header needs at the front of a write buffer:
	// 2 bytes and up to 8 of extended length; server frames are not masked (§5.3).
	maxHeader = 10
	// maxControl is the largest control frame payload (§5.5).
	maxControl = 125
	// controlWait bounds writing a pong or the echo of a close frame, as gorilla does.
	controlWait = time.Second
)

// errTooBig is next's error for a data message larger than the limit, reported as soon as the
// limit is passed; the next call skips the rest of it. next reports its opcode.
var errTooBig = errors.New("wsjson: message over the read limit")

// wsConn is the server's end of an upgraded WebSocket connection. One goroutine reads with
// next; writes are serialised, because the reader answers pings and echoes close frames while
// the stream's writer sends prompts.
type wsConn struct {
	nc net.Conn
	br *bufio.Reader

	// Reader only.
	consumed int    // bytes of br holding the message next returned in place
	frag     []byte // a message assembled from several frames, or too large for br
	skip     int64  // payload bytes left of a frame of an oversized message
	skipping bool   // continuation frames of an oversized message are still to come

	wmu     sync.Mutex
	wclosed bool  // a close frame has gone out; nothing may follow it (§5.5.1)
	werr    error // a failed write leaves the stream unusable
}

// frameHeader is one frame's header as read.
type frameHeader struct {
	fin    bool
	op     int
	length int64
	key    [4]byte
	size   int // header bytes
}

// next returns the next data message: its opcode (opText or opBinary) and payload, unmasked and
// valid until the next call. On the way it answers pings, ignores pongs, and returns a close
// frame as a *websocket.CloseError after echoing it (unless a close frame was sent already). A
// data message of more than limit bytes is reported as errTooBig with its opcode once the
// limit is passed, and the rest of it is skipped by the next call. A framing violation sends
// close 1002 and returns an error, as gorilla/websocket does.
func (c *wsConn) next(limit int64) (op int, data []byte, err error) {
	if c.consumed > 0 {
		_, _ = c.br.Discard(c.consumed) // buffered: cannot fail
		c.consumed = 0
	}
	if err := c.skipRest(); err != nil {
		return 0, nil, err
	}
	op = -1
	var total int64
	c.frag = c.frag[:0]
	for {
		h, err := c.header()
		if err != nil {
			return 0, nil, err
		}
		switch h.op {
		case opClose, opPing, opPong:
			if err := c.control(h); err != nil {
				return 0, nil, err
			}
			continue
		case opContinuation:
			if op < 0 {
				return 0, nil, c.protocolError("continuation after FIN")
			}
		default:
			if op >= 0 {
				return 0, nil, c.protocolError("data before FIN")
			}
			op = h.op
		}
		total += h.length
		if total > limit || total < 0 {
			_, _ = c.br.Discard(h.size) // peeked: cannot fail
			c.skip, c.skipping = h.length, !h.fin
			c.frag = c.frag[:0]
			return op, nil, errTooBig
		}
		end := int64(h.size) + h.length
		switch {
		case h.fin && len(c.frag) == 0 && end <= int64(c.br.Size()):
			// The usual case: the whole message is one frame that fits the read buffer.
			p, err := c.br.Peek(int(end))
			if err != nil {
				return 0, nil, err
			}
			data = p[h.size:]
			unmask(h.key, data)
			c.consumed = int(end)
			return op, data, nil
		default:
			_, _ = c.br.Discard(h.size)
			n := len(c.frag)
			c.frag = growLen(c.frag, n+int(h.length))
			if _, err := io.ReadFull(c.br, c.frag[n:]); err != nil {
				return 0, nil, unexpectedEOF(err)
			}
			unmask(h.key, c.frag[n:])
		}
		if h.fin {
			return op, c.frag, nil
		}
	}
}

// skipRest discards what is left of an oversized message: the rest of its frame, then its
// continuation frames up to the final one, answering control frames on the way.
func (c *wsConn) skipRest() error {
	if c.skip > 0 {
		if err := discard(c.br, c.skip); err != nil {
			return err
		}
		c.skip = 0
	}
	for c.skipping {
		h, err := c.header()
		if err != nil {
			return err
		}
		switch h.op {
		case opClose, opPing, opPong:
			if err := c.control(h); err != nil {
				return err
			}
			continue
		case opContinuation:
		default:
			return c.protocolError("data before FIN")
		}
		if err := discard(c.br, int64(h.size)+h.length); err != nil {
			return err
		}
		c.skipping = !h.fin
	}
	return nil
}

// header reads and checks a frame header without consuming it.
func (c *wsConn) header() (h frameHeader, err error) {
	p, err := c.br.Peek(2)
	if err != nil {
		return h, unexpectedEOF(err)
	}
	b0, b1 := p[0], p[1]
	h.fin, h.op, h.length = b0&finBit != 0, int(b0&0x0f), int64(b1&0x7f)
	if b0&rsvBits != 0 || b1&maskBit == 0 || (h.op >= opClose && (h.length > maxControl || !h.fin)) ||
		(h.op > opBinary && h.op < opClose) || h.op > opPong {
		return h, c.protocolError(headerProblems(b0, b1))
	}
	h.size = 2 + 4
	switch h.length {
	case 126:
		h.size += 2
	case 127:
		h.size += 8
	}
	if p, err = c.br.Peek(h.size); err != nil {
		return h, unexpectedEOF(err)
	}
	switch h.length {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(p[2:]))
	case 127:
		if h.length = int64(binary.BigEndian.Uint64(p[2:])); h.length < 0 {
			return h, c.protocolError("bad length")
		}
	}
	copy(h.key[:], p[h.size-4:h.size])
	return h, nil
}

// headerProblems names everything wrong with a frame's first two bytes, in gorilla's words.
func headerProblems(b0, b1 byte) string {
	var errs []string
	for i, name := range []string{"RSV1 set", "RSV2 set", "RSV3 set"} {
		if b0&(0x40>>i) != 0 {
			errs = append(errs, name)
		}
	}
	op := int(b0 & 0x0f)
	switch {
	case op >= opClose && op <= opPong:
		if b1&0x7f > maxControl {
			errs = append(errs, "len > 125 for control")
		}
		if b0&finBit == 0 {
			errs = append(errs, "FIN not set on control")
		}
	case op > opBinary:
		errs = append(errs, "bad opcode "+strconv.Itoa(op))
	}
	if b1&maskBit == 0 {
		errs = append(errs, "bad MASK")
	}
	return strings.Join(errs, ", ")
}

// control handles a control frame: a ping is answered with a pong, a pong is ignored, a close
// frame is echoed and returned as a *websocket.CloseError.
func (c *wsConn) control(h frameHeader) error {
	end := h.size + int(h.length)
	p, err := c.br.Peek(end)
	if err != nil {
		return unexpectedEOF(err)
	}
	payload := p[h.size:]
	unmask(h.key, payload)
	defer c.br.Discard(end) //nolint:errcheck // buffered: cannot fail
	switch h.op {
	case opPing:
		if err := c.writeControl(opPong, payload); err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			return err
		}
	case opClose:
		code, text := websocket.CloseNoStatusReceived, ""
		if len(payload) >= 2 {
			code = int(binary.BigEndian.Uint16(payload))
			if !validReceivedCloseCode(code) {
				return c.protocolError("bad close code " + strconv.Itoa(code))
			}
			text = string(payload[2:])
			if !utf8.ValidString(text) {
				return c.protocolError("invalid utf8 payload in close frame")
			}
		}
		_ = c.writeClose(code, "", time.Now().Add(controlWait))
		return &websocket.CloseError{Code: code, Text: text}
	}
	return nil
}

// validReceivedCloseCode reports whether a peer may send code (RFC 6455 §7.4, the IANA
// registry), as gorilla/websocket judges it.
func validReceivedCloseCode(code int) bool {
	switch code {
	case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseProtocolError,
		websocket.CloseUnsupportedData, websocket.CloseInvalidFramePayloadData, websocket.ClosePolicyViolation,
		websocket.CloseMessageTooBig, websocket.CloseMandatoryExtension, websocket.CloseInternalServerErr,
		websocket.CloseServiceRestart, websocket.CloseTryAgainLater:
		return true
	}
	return code >= 3000 && code <= 4999
}

// protocolError closes the connection with 1002 and message, and returns the read error.
func (c *wsConn) protocolError(message string) error {
	_ = c.writeClose(websocket.CloseProtocolError, message, time.Now().Add(controlWait))
	return errors.New("websocket: " + message)
}

// unmask applies the client's masking key (RFC 6455 §5.3) in place, eight bytes at a time.
func unmask(key [4]byte, b []byte) {
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k)
	}
	for ; i < len(b); i++ {
		b[i] ^= key[i&3]
	}
}

// discard skips n bytes of the reader.
func discard(br *bufio.Reader, n int64) error {
	for n > 0 {
		step := int(min(n, 1<<30))
		if _, err := br.Discard(step); err != nil {
			return unexpectedEOF(err)
		}
		n -= int64(step)
	}
	return nil
}

// growLen returns b resized to n bytes, keeping its contents.
func growLen(b []byte, n int) []byte {
	if n <= cap(b) {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}

// errAbnormal is a connection that ended without a close frame: close code 1006 (RFC 6455
// §7.1.5), as gorilla/websocket reports it.
var errAbnormal = &websocket.CloseError{Code: websocket.CloseAbnormalClosure, Text: io.ErrUnexpectedEOF.Error()}

// unexpectedEOF reports the connection ending, between frames or inside one, as errAbnormal.
func unexpectedEOF(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errAbnormal
	}
	return err
}

// Write buffers, shared by every stream of the process: a buffer is held only while a message
// is being sent. Each has maxHeader bytes of room in front of the message.
var wbufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 16<<10) // a one-second G.711 media message and its header
	return &b
}}

func getWbuf() *[]byte { return wbufs.Get().(*[]byte) }

func putWbuf(b *[]byte) { wbufs.Put(b) }

// writeText sends buf[maxHeader:] as one text message in one frame.
func (c *wsConn) writeText(buf []byte, deadline time.Time) error {
	return c.writeFrame(opText, buf, deadline)
}

// writeControl sends a control frame of opcode op with payload (at most 125 bytes).
func (c *wsConn) writeControl(op byte, payload []byte) error {
	bp := getWbuf()
	defer putWbuf(bp)
	*bp = append((*bp)[:maxHeader], payload...)
	return c.writeFrame(op, *bp, time.Now().Add(controlWait))
}

// writeClose sends a close frame with code and reason (cut to fit), unless one was sent; 1005
// (no status) sends an empty close frame, as it may not appear on the wire (§7.4.1).
func (c *wsConn) writeClose(code int, reason string, deadline time.Time) error {
	bp := getWbuf()
	defer putWbuf(bp)
	b := (*bp)[:maxHeader]
	if code != websocket.CloseNoStatusReceived {
		b = binary.BigEndian.AppendUint16(b, uint16(code))
		b = append(b, reason[:min(len(reason), maxControl-2)]...)
	}
	*bp = b
	return c.writeFrame(opClose, b, deadline)
}

// writeFrame sends one final, unmasked frame of opcode op whose payload is buf[maxHeader:],
// writing its header into the room in front, with one write.
func (c *wsConn) writeFrame(op byte, buf []byte, deadline time.Time) error {
	n := len(buf) - maxHeader
	var start int
	switch {
	case n <= maxControl:
		start = maxHeader - 2
		buf[start+1] = byte(n)
	case n <= 0xffff:
		start = maxHeader - 4
		buf[start+1] = 126
		binary.BigEndian.PutUint16(buf[start+2:], uint16(n))
	default:
		start = 0
		buf[1] = 127
		binary.BigEndian.PutUint64(buf[2:], uint64(n))
	}
	buf[start] = finBit | op
	c.wmu.Lock()
	defer c.wmu.Unlock()
	switch {
	case c.werr != nil:
		return c.werr
	case c.wclosed:
		return websocket.ErrCloseSent
	}
	if err := c.nc.SetWriteDeadline(deadline); err != nil {
		c.werr = err
		return err
	}
	if _, err := c.nc.Write(buf[start:]); err != nil {
		c.werr = err
		return err
	}
	if op == opClose {
		c.wclosed = true
	}
	return nil
}
