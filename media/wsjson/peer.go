package wsjson

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
)

// PeerConfig configures a Peer. E is the simulated client's event type.
type PeerConfig[E any] struct {
	// Buffer is the capacity of the events channel. Default 256.
	Buffer int
	// Realtime keeps a playback clock: marks are echoed once the audio queued before them has
	// played in real time, as the platform does. Off, they are echoed as soon as they are read.
	Realtime bool
	// Handle checks and acts on one server message, on the reader goroutine; data is valid
	// only until it returns (the peer reads every message into one buffer). An error means the
	// server broke the protocol: the peer reports it with Failed, closes with 1002 and waits
	// for the server's close frame.
	Handle func(typ int, data []byte) error
	// Echo sends a mark's echo and reports it; cleared is true when a clear discarded the
	// audio before it. It runs on the reader or the playback goroutine.
	Echo func(name string, cleared bool) error
	// Failed, when set, makes the event reporting a protocol error by the server.
	Failed func(err error) E
	// Closed makes the last event: the server's close code and reason (1006 and the error when
	// the connection dropped without one), and the server's protocol error, if any.
	Closed func(code int, reason string, err, failure error) E
	// ErrClosed is what Send returns once the stream has closed.
	ErrClosed error
}

// Peer is the transport half of a simulated platform client: the platform's side of a
// Twilio-style JSON stream. It owns the connection, serialises writes, reads the server's
// messages into the dialect's Handle, keeps the playback clock that times mark echoes, and
// runs the closing handshake. Its methods are safe for concurrent use.
type Peer[E any] struct {
	conn   *websocket.Conn
	cfg    PeerConfig[E]
	events chan E

	wmu      sync.Mutex // serialises writes: text messages, control frames and echoes
	wclosed  bool
	werr     error     // a failed write leaves the stream unusable
	wbuf     []byte    // the frame being written
	deadline time.Time // the write deadline set on the connection
	send     func(msg []byte) error
	// fd is the connection's socket on Linux (-1 elsewhere, or for TLS): a frame is written
	// to it directly, and only what the socket cannot take at once goes through the
	// net.Conn, which waits for room. Go's write path (the descriptor's lock, re-arming the
	// poller, the scheduler told of the system call) was a tenth of the CPU of callproof
	// load's callers. The descriptor is valid while wclosed is false: the connection is
	// closed only after wclosed is set, under wmu, which every write holds.
	fd int

	pmu     sync.Mutex // playback clock
	playEnd time.Time
	pending []dueMark
	wake    chan struct{}

	closeOnce  sync.Once
	done       chan struct{} // Close gave up waiting; event sends stop blocking
	readerExit chan struct{} // the reader has stopped reading
	rbuf       []byte        // the reader's message buffer
	readerDone chan struct{} // the reader has finished (events closed)
}

type dueMark struct {
	name string
	due  time.Time
}

// DialURL normalises a stream URL for dialling: http:// and https:// become ws:// and wss://.
func DialURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return nil, errors.New("want a ws:// or wss:// URL")
	}
	return u, nil
}

// Dial opens the platform's side of a stream to u with the upgrade headers hdr, through d (nil:
// a 10 s handshake timeout, no proxy). When the server refuses the upgrade, status is its HTTP
// status.
func Dial(ctx context.Context, d *websocket.Dialer, u *url.URL, hdr http.Header) (conn *websocket.Conn, status int, err error) {
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	}
	conn, resp, err := d.DialContext(ctx, u.String(), hdr)
	if err != nil && resp != nil {
		status = resp.StatusCode
	}
	return conn, status, err
}

// NewPeer returns a peer on conn; Run starts its reader.
func NewPeer[E any](conn *websocket.Conn, cfg PeerConfig[E]) *Peer[E] {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	p := &Peer[E]{
		conn:       conn,
		cfg:        cfg,
		events:     make(chan E, cfg.Buffer),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		readerExit: make(chan struct{}),
		readerDone: make(chan struct{}),
		fd:         rawSocket(conn.NetConn()),
	}
	p.send = p.sendLocked
	// Text messages go out as frames the peer writes itself (sendLocked); every other write
	// goes through gorilla/websocket under the same lock, including the replies its reader
	// makes to the server's pings and close frame.
	conn.SetPingHandler(func(data string) error {
		p.wmu.Lock()
		defer p.wmu.Unlock()
		if p.wclosed || p.werr != nil {
			return nil
		}
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	conn.SetCloseHandler(func(code int, _ string) error {
		p.wmu.Lock()
		defer p.wmu.Unlock()
		if !p.wclosed && p.werr == nil {
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
		}
		p.wclosed = true
		return nil
	})
	return p
}

// Run starts reading the server's messages (and, in real time, the playback clock).
func (p *Peer[E]) Run() { go p.readLoop() }

// Events returns the client's events; the channel closes after the Closed event.
func (p *Peer[E]) Events() <-chan E { return p.events }

// Writes runs fn holding the write lock, so that the text messages fn sends (and any counters
// it numbers them with) go out in order with nothing in between. send returns ErrClosed once
// the stream has closed. Sending allocates nothing once the peer's frame buffer has grown to
// the largest message.
func (p *Peer[E]) Writes(fn func(send func(msg []byte) error) error) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return fn(p.send)
}

// sendLocked writes msg as one masked text frame (RFC 6455 §5.2, §5.3) with one write.
func (p *Peer[E]) sendLocked(msg []byte) error {
	switch {
	case p.wclosed:
		return p.cfg.ErrClosed
	case p.werr != nil:
		return p.werr
	}
	b := append(p.wbuf[:0], finBit|opText, 0)
	switch n := len(msg); {
	case n <= maxControl:
		b[1] = maskBit | byte(n)
	case n <= 0xffff:
		b[1] = maskBit | 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = maskBit | 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	b = append(b, key[:]...)
	off := len(b)
	b = append(b, msg...)
	unmask(key, b[off:]) // masking and unmasking are the same XOR
	p.wbuf = b
	if p.fd >= 0 {
		n, full, err := writeSome(p.fd, b)
		if err != nil || !full {
			p.werr = err
			return err
		}
		b = b[n:] // the socket is full: the net.Conn waits for room
	}
	// A deadline per write costs a timer update; renewing it once a second bounds each write
	// to between nine and ten seconds all the same.
	if now := time.Now(); p.deadline.Sub(now) < writeTimeout-time.Second {
		p.deadline = now.Add(writeTimeout)
		if err := p.conn.NetConn().SetWriteDeadline(p.deadline); err != nil {
			p.werr = err
			return err
		}
	}
	if _, err := p.conn.NetConn().Write(b); err != nil {
		p.werr = err
		return err
	}
	return nil
}

// Emit delivers ev, blocking while the buffer is full until Close gives up on the consumer.
func (p *Peer[E]) Emit(ev E) {
	select {
	case p.events <- ev:
		return
	default:
	}
	select {
	case p.events <- ev:
	case <-p.done:
	}
}

// Queued advances the playback clock by samples of audio (8 kHz) the server sent.
func (p *Peer[E]) Queued(samples int) {
	p.pmu.Lock()
	now := time.Now()
	if p.playEnd.Before(now) {
		p.playEnd = now
	}
	p.playEnd = p.playEnd.Add(time.Duration(samples) * time.Second / media.SampleRate)
	p.pmu.Unlock()
}

// Marked handles a mark the server sent: it emits ev, then either echoes the mark at once or,
// in real time, schedules the echo for when the audio queued before it has played.
func (p *Peer[E]) Marked(name string, ev E) error {
	if !p.cfg.Realtime {
		p.Emit(ev)
		return p.echo(name, false)
	}
	p.pmu.Lock()
	if now := time.Now(); p.playEnd.Before(now) {
		p.playEnd = now
	}
	p.pending = append(p.pending, dueMark{name: name, due: p.playEnd})
	p.pmu.Unlock()
	p.Emit(ev)
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// Cleared handles the server's clear: the queued audio is dropped and every mark still
// pending is echoed at once as cleared, as the platform does. Before emitting ev and echoing,
// it calls taken (when set) with the number of marks that were pending.
func (p *Peer[E]) Cleared(ev E, taken func(pending int)) error {
	p.pmu.Lock()
	pending := p.pending
	p.pending = nil
	p.playEnd = time.Now()
	p.pmu.Unlock()
	if taken != nil {
		taken(len(pending))
	}
	p.Emit(ev)
	for _, m := range pending {
		if err := p.echo(m.name, true); err != nil {
			return err
		}
	}
	return nil
}

// echo sends a mark back through the dialect; a closed stream is not an error.
func (p *Peer[E]) echo(name string, cleared bool) error {
	if err := p.cfg.Echo(name, cleared); err != nil && !errors.Is(err, p.cfg.ErrClosed) {
		return err
	}
	return nil
}

// Close closes the stream (close code 1000) and waits, up to closeGrace, for the server's
// close frame and the peer's goroutines. It is idempotent.
func (p *Peer[E]) Close() error {
	p.closeOnce.Do(func() {
		p.wmu.Lock()
		if !p.wclosed {
			_ = p.conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			p.wclosed = true
		}
		p.wmu.Unlock()
		t := time.NewTimer(closeGrace)
		select {
		case <-p.readerExit:
		case <-t.C:
		}
		t.Stop()
		close(p.done)
		_ = p.conn.Close()
		<-p.readerDone
	})
	return nil
}

// readLoop reads the server's messages until the stream closes, then emits the Closed event.
func (p *Peer[E]) readLoop() {
	defer close(p.readerDone)
	var playerDone chan struct{}
	if p.cfg.Realtime {
		playerDone = make(chan struct{})
		go p.player(playerDone)
	}
	var (
		code          int
		reason        string
		cerr, failure error
	)
	for {
		typ, data, err := p.readMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code, reason = ce.Code, ce.Text
			} else {
				code, cerr = websocket.CloseAbnormalClosure, err
			}
			break
		}
		if failure != nil {
			continue // waiting for the server's close frame
		}
		if err := p.cfg.Handle(typ, data); err != nil {
			failure = err
			if p.cfg.Failed != nil {
				p.Emit(p.cfg.Failed(err))
			}
			p.wmu.Lock()
			if !p.wclosed {
				_ = p.conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseProtocolError, TruncReason(err.Error())), time.Now().Add(time.Second))
				p.wclosed = true
			}
			p.wmu.Unlock()
		}
	}
	close(p.readerExit)
	p.wmu.Lock()
	p.wclosed = true
	p.wmu.Unlock()
	_ = p.conn.Close()
	if playerDone != nil {
		<-playerDone
	}
	p.Emit(p.cfg.Closed(code, reason, cerr, failure))
	close(p.events)
}

// readMessage reads the next message into the peer's buffer, which grows to the largest
// message (a one-second prompt message) and is reused, where gorilla/websocket's ReadMessage
// allocates each message anew.
func (p *Peer[E]) readMessage() (typ int, data []byte, err error) {
	typ, r, err := p.conn.NextReader()
	if err != nil {
		return 0, nil, err
	}
	b := p.rbuf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			p.rbuf = b
			return typ, b, nil
		}
		if err != nil {
			p.rbuf = b
			return 0, nil, err
		}
	}
}

// player echoes marks when the audio before them has played.
func (p *Peer[E]) player(done chan struct{}) {
	defer close(done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		p.pmu.Lock()
		var wait time.Duration = -1
		var due *dueMark
		if len(p.pending) > 0 {
			if wait = time.Until(p.pending[0].due); wait <= 0 {
				m := p.pending[0]
				p.pending = p.pending[1:]
				due = &m
			}
		}
		p.pmu.Unlock()
		if due != nil {
			_ = p.echo(due.name, false)
			continue
		}
		var tc <-chan time.Time
		if wait > 0 {
			t.Reset(wait)
			tc = t.C
		}
		select {
		case <-p.readerExit:
			return
		case <-p.wake:
		case <-tc:
		}
	}
}
