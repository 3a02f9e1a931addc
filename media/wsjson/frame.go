package wsjson

import (
	"encoding/binary"
	"errors"
	"io"
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
// connection's read buffer, and every outbound message is one system call from a buffer shared
// through a pool. On Linux the reads of every plain-TCP stream are made by a few pollers rather
// than a goroutine per call (poll_linux.go).

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

// errTooBig is parse's error for a data message larger than the limit, reported as soon as
// the limit is passed; the following calls skip the rest of it. parse reports its opcode.
var errTooBig = errors.New("wsjson: message over the read limit")

// errNeedMore is parse's answer when the buffer ends inside a frame: read more, call again.
var errNeedMore = errors.New("wsjson: incomplete frame")

// connWriter is the writing side of the connection: a net.Conn, or on Linux a polled
// connection (poll_linux.go), whose reads the package's poller makes.
type connWriter interface {
	Write(p []byte) (int, error)
	SetWriteDeadline(t time.Time) error
	Close() error
}

// wsConn is the server's end of an upgraded WebSocket connection. Its reader is a parser over
// a buffer that can stop anywhere and resume when more bytes arrive (parse), so a message can be
// read either by a goroutine blocked on the socket (next) or by the poller, which reads each
// connection only when it has data. Writes are serialised, because the reader answers pings and
// echoes close frames while the stream's writer sends prompts.
type wsConn struct {
	nc  connWriter
	src io.Reader // next's source; nil for a polled connection

	// Reader only.
	buf      []byte // buf[r:w] is read and not yet parsed
	r, w     int
	shared   bool   // buf is the poller's, lent for one round of reads
	consumed int    // bytes at buf[r:] holding the message parse returned in place
	frag     []byte // a message assembled from several frames
	fragOp   int    // its opcode, while assembling
	fragging bool   // a message is being assembled
	fragOut  bool   // frag holds the message parse returned last; the next call empties it
	total    int64  // bytes of the message being assembled so far
	skip     int64  // payload bytes left of a frame of an oversized message
	skipping bool   // continuation frames of an oversized message are still to come
	// replies, when set, has control replies (pong, close echo, close 1002) written on their
	// own goroutines, at most cap(replies) at a time (one slot each): the poller serves many
	// connections and may not wait for one's writer. A reply that finds no slot free is
	// dropped (a ping flood, or the connection closing).
	replies chan struct{}

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

// next returns the next data message, reading from src as needed; see parse.
func (c *wsConn) next(limit int64) (op int, data []byte, err error) {
	for {
		op, data, err = c.parse(limit)
		if err != errNeedMore {
			return op, data, err
		}
		if err := c.fill(); err != nil {
			return 0, nil, unexpectedEOF(err)
		}
	}
}

// fill reads once from src into the buffer.
func (c *wsConn) fill() error {
	switch {
	case c.buf == nil:
		c.buf = make([]byte, readBufferSize)
	case c.r == c.w && len(c.buf) > readBufferSize:
		c.buf, c.r, c.w = make([]byte, readBufferSize), 0, 0 // after a large message
	case c.r == c.w:
		c.r, c.w = 0, 0
	case c.w == len(c.buf):
		c.makeRoom()
	}
	for range 100 {
		n, err := c.src.Read(c.buf[c.w:])
		c.w += n
		if n > 0 || err != nil {
			if n > 0 {
				return nil // the error, if any, comes again with the next read
			}
			return err
		}
	}
	return io.ErrNoProgress
}

// makeRoom moves what is left to the front of a full buffer, or grows it when nothing was
// consumed (parse reserves room for the frame it waits for, so that is rare).
func (c *wsConn) makeRoom() {
	if c.r > 0 && !c.shared {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
		return
	}
	c.reserve(c.w - c.r + readBufferSize)
}

// reserve makes room in the buffer for a frame of n bytes starting at r.
func (c *wsConn) reserve(n int) {
	if n <= len(c.buf)-c.r {
		return
	}
	pending := c.buf[c.r:c.w]
	if n <= len(c.buf) && !c.shared {
		c.w = copy(c.buf, pending)
	} else {
		nb := make([]byte, max(n, readBufferSize))
		c.w = copy(nb, pending)
		c.buf, c.shared = nb, false
	}
	c.r = 0
}

// parse returns the next data message in the buffer: its opcode (opText or opBinary) and
// payload, unmasked and valid until the next call. It returns errNeedMore, having kept its
// place, when the buffer ends before the message does. On the way it answers pings, ignores
// pongs, and returns a close frame as a *websocket.CloseError after echoing it (unless a close
// frame was sent already). A data message of more than limit bytes is reported as errTooBig
// with its opcode once the limit is passed, and the rest of it is skipped by the next calls. A
// framing violation sends close 1002 and returns an error, as gorilla/websocket does.
func (c *wsConn) parse(limit int64) (op int, data []byte, err error) {
	c.r += c.consumed
	c.consumed = 0
	if c.fragOut {
		c.frag, c.fragOut = c.frag[:0], false
	}
	for {
		if c.skip > 0 {
			n := int(min(c.skip, int64(c.w-c.r)))
			c.r += n
			if c.skip -= int64(n); c.skip > 0 {
				return 0, nil, errNeedMore
			}
		}
		h, err := c.header()
		if err != nil {
			return 0, nil, err
		}
		if h.op >= opClose {
			if err := c.control(h); err != nil {
				return 0, nil, err
			}
			continue
		}
		if c.skipping { // the rest of an oversized message
			if h.op != opContinuation {
				return 0, nil, c.protocolError("data before FIN")
			}
			c.r += h.size
			c.skip, c.skipping = h.length, !h.fin
			continue
		}
		op = h.op
		switch {
		case op == opContinuation && !c.fragging:
			return 0, nil, c.protocolError("continuation after FIN")
		case op == opContinuation:
			op = c.fragOp
		case c.fragging:
			return 0, nil, c.protocolError("data before FIN")
		}
		total := c.total + h.length
		if total > limit || total < 0 {
			c.r += h.size
			c.skip, c.skipping = h.length, !h.fin
			c.frag, c.fragging, c.total = c.frag[:0], false, 0
			return op, nil, errTooBig
		}
		end := int64(h.size) + h.length
		if end > int64(c.w-c.r) {
			c.reserve(int(end))
			return 0, nil, errNeedMore
		}
		payload := c.buf[c.r+h.size : c.r+int(end)]
		unmask(h.key, payload)
		if h.fin && !c.fragging {
			// The usual case: the whole message is one frame, parsed where it lies.
			c.consumed = int(end)
			return op, payload, nil
		}
		c.frag = append(c.frag, payload...)
		c.r += int(end)
		if !h.fin {
			c.fragOp, c.fragging, c.total = op, true, total
			continue
		}
		c.fragging, c.fragOut, c.total = false, true, 0
		return op, c.frag, nil
	}
}

// header checks the header of the frame at r without consuming it; errNeedMore when the buffer
// ends inside it.
func (c *wsConn) header() (h frameHeader, err error) {
	p := c.buf[c.r:c.w]
	if len(p) < 2 {
		return h, errNeedMore
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
	if len(p) < h.size {
		return h, errNeedMore
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
	if end > c.w-c.r {
		c.reserve(end)
		return errNeedMore
	}
	payload := c.buf[c.r+h.size : c.r+end]
	unmask(h.key, payload)
	c.r += end
	switch h.op {
	case opPing:
		if err := c.reply(opPong, payload); err != nil && !errors.Is(err, websocket.ErrCloseSent) {
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
		c.replyClose(code, "")
		return &websocket.CloseError{Code: code, Text: text}
	}
	return nil
}

// reply sends a control frame for the reader: at once, or on its own goroutine when the
// connection is async.
func (c *wsConn) reply(op byte, payload []byte) error {
	if c.replies == nil {
		return c.writeControl(op, payload)
	}
	p := append([]byte(nil), payload...)
	c.async(func() { _ = c.writeControl(op, p) })
	return nil
}

// replyClose sends the reader's close frame, as reply does.
func (c *wsConn) replyClose(code int, reason string) {
	if c.replies == nil {
		_ = c.writeClose(code, reason, time.Now().Add(controlWait))
		return
	}
	c.async(func() { _ = c.writeClose(code, reason, time.Now().Add(controlWait)) })
}

// async runs write on its own goroutine if a reply slot is free.
func (c *wsConn) async(write func()) {
	select {
	case c.replies <- struct{}{}:
		go func() {
			defer func() { <-c.replies }()
			write()
		}()
	default:
	}
}

// waitReplies waits for the replies in flight (each bounded by controlWait) and keeps later
// ones from starting.
func (c *wsConn) waitReplies() {
	for range cap(c.replies) {
		c.replies <- struct{}{}
	}
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
	c.replyClose(websocket.CloseProtocolError, message)
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
