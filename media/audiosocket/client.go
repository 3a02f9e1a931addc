package audiosocket

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/callproof/callproof/media"
)

// ClientOption configures a Client.
type ClientOption func(*clientOptions)

type clientOptions struct {
	realtime bool
	buffer   int
}

// WithRealtimeAudio makes the client stream like Asterisk does: one 20 ms frame every 20 ms for
// the whole call, taken from the audio queued with SendAudio and silence when none is queued.
// Off (the default), SendAudio writes its frames at once and nothing is sent in between.
func WithRealtimeAudio(on bool) ClientOption { return func(o *clientOptions) { o.realtime = on } }

// WithEventBuffer sets the capacity of the Events channel (default 256). The client stops
// reading while the channel is full.
func WithEventBuffer(n int) ClientOption { return func(o *clientOptions) { o.buffer = n } }

// Client plays Asterisk's side of an AudioSocket connection: it dials the server, sends the
// UUID frame, then caller audio (0x10), digits (0x03) and a hangup (0x00), and reports the
// audio the server sends. Like Asterisk it accepts only audio and hangup frames from the
// server and drops the connection on anything else. Its methods are safe for concurrent use.
type Client struct {
	conn   net.Conn
	opts   clientOptions
	events chan media.SimEvent

	wmu    sync.Mutex // serialises writes
	wbuf   []byte
	ended  bool // Hangup or Close was called, or the connection failed
	amu    sync.Mutex
	queued []int16 // realtime mode: caller audio not yet sent

	stopSend   chan struct{} // closed to stop the realtime sender
	stopOnce   sync.Once
	done       chan struct{} // closed by Close: event sends stop blocking
	closeOnce  sync.Once
	readerDone chan struct{}
	senderDone chan struct{}
}

// Dial connects to an AudioSocket server at addr (host:port) as Asterisk does (TCP, 2 s connect
// timeout) and sends the UUID frame.
func Dial(ctx context.Context, addr string, uuid [16]byte, opts ...ClientOption) (*Client, error) {
	o := clientOptions{buffer: 256}
	for _, opt := range opts {
		opt(&o)
	}
	if o.buffer <= 0 {
		o.buffer = 256
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("audiosocket: dial: %w", err)
	}
	c := &Client{
		conn:       conn,
		opts:       o,
		events:     make(chan media.SimEvent, o.buffer),
		wbuf:       make([]byte, 0, wireFrame),
		stopSend:   make(chan struct{}),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		senderDone: make(chan struct{}),
	}
	if err := c.write(kindUUID, uuid[:]); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("audiosocket: send uuid: %w", err)
	}
	go c.readLoop()
	if o.realtime {
		go c.sendLoop()
	} else {
		close(c.senderDone)
	}
	return c, nil
}

// Events returns what the client observed: SimAudio for each audio frame the server sent (its
// 8 kHz PCM), then one SimClosed (Reason "hangup" when the server sent a hangup frame, "closed"
// when it closed the connection, or the protocol violation), after which the channel closes.
func (c *Client) Events() <-chan media.SimEvent { return c.events }

// SendAudio sends caller audio as 20 ms frames of 160 samples, the last one padded with
// silence. With WithRealtimeAudio the audio is queued and goes out with the 20 ms stream.
func (c *Client) SendAudio(pcm []int16) error {
	if c.opts.realtime {
		c.wmu.Lock()
		ended := c.ended
		c.wmu.Unlock()
		if ended {
			return ErrClientClosed
		}
		c.amu.Lock()
		c.queued = append(c.queued, pcm...)
		if r := len(c.queued) % media.FrameSamples; r != 0 {
			c.queued = append(c.queued, make([]int16, media.FrameSamples-r)...)
		}
		c.amu.Unlock()
		return nil
	}
	var frame [frameBytes]byte
	for off := 0; off < len(pcm); off += media.FrameSamples {
		part := pcm[off:min(off+media.FrameSamples, len(pcm))]
		clear(frame[:])
		for i, s := range part {
			binary.LittleEndian.PutUint16(frame[2*i:], uint16(s))
		}
		if err := c.write(kindSlin, frame[:]); err != nil {
			return err
		}
	}
	return nil
}

// SendDTMF sends one digit (0-9, *, #, A-D) as a 0x03 frame, as Asterisk 20 and later do.
func (c *Client) SendDTMF(d byte) error {
	if strings.IndexByte(dtmfDigits, d) < 0 {
		return fmt.Errorf("audiosocket: %q is not a DTMF digit", d)
	}
	return c.write(kindDTMF, []byte{d})
}

// Hangup sends a hangup frame (00 00 00) and half-closes the connection, as a caller hanging
// up does; the server then closes and Events reports SimClosed.
func (c *Client) Hangup() error {
	c.stopSender()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ended {
		return ErrClientClosed
	}
	err := c.writeLocked(kindHangup, nil)
	c.ended = true
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	return err
}

// Close closes the connection at once and waits for the client's goroutines. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.stopOnce.Do(func() { close(c.stopSend) })
		close(c.done)
		c.wmu.Lock()
		c.ended = true
		c.wmu.Unlock()
		_ = c.conn.Close()
	})
	<-c.senderDone
	<-c.readerDone
	return nil
}

func (c *Client) stopSender() { c.stopOnce.Do(func() { close(c.stopSend) }); <-c.senderDone }

func (c *Client) write(kind byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ended {
		return ErrClientClosed
	}
	return c.writeLocked(kind, payload)
}

func (c *Client) writeLocked(kind byte, payload []byte) error {
	c.wbuf = appendFrame(c.wbuf[:0], kind, payload)
	if err := c.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	if _, err := c.conn.Write(c.wbuf); err != nil {
		c.ended = true
		return fmt.Errorf("audiosocket: write: %w", err)
	}
	return nil
}

// sendLoop streams one frame per 20 ms, anchored at its start like the server's clock.
func (c *Client) sendLoop() {
	defer close(c.senderDone)
	var frame [frameBytes]byte
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for n := int64(1); ; n++ {
		select {
		case <-c.stopSend:
			return
		case <-t.C:
		}
		clear(frame[:])
		c.amu.Lock()
		if len(c.queued) >= media.FrameSamples {
			for i, s := range c.queued[:media.FrameSamples] {
				binary.LittleEndian.PutUint16(frame[2*i:], uint16(s))
			}
			c.queued = c.queued[media.FrameSamples:]
		}
		c.amu.Unlock()
		if err := c.write(kindSlin, frame[:]); err != nil {
			return
		}
		due := start.Add(time.Duration(n) * media.FrameDuration)
		if time.Since(due) > maxLate {
			start, n = time.Now(), 0
			due = start
		}
		t.Reset(time.Until(due))
	}
}

// readLoop reports the server's frames until the connection ends.
func (c *Client) readLoop() {
	defer close(c.readerDone)
	defer close(c.events)
	fr := frameReader{r: bufio.NewReaderSize(c.conn, 2048)}
	reason := "closed"
	for {
		kind, payload, err := fr.next()
		if err != nil {
			if pe, ok := err.(*protoError); ok {
				reason = "server sent " + pe.msg
			}
			break
		}
		if kind == kindHangup {
			reason = "hangup"
			break
		}
		if kind != kindSlin {
			reason = fmt.Sprintf("server sent frame kind 0x%02x; Asterisk accepts only 0x10 and 0x00 and drops the call", kind)
			break
		}
		if len(payload)%2 != 0 {
			reason = fmt.Sprintf("server sent an audio frame of %d bytes, not whole samples", len(payload))
			break
		}
		pcm := make([]int16, len(payload)/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(payload[2*i:]))
		}
		if !c.emit(media.SimEvent{Kind: media.SimAudio, Audio: pcm}) {
			break
		}
	}
	c.stopOnce.Do(func() { close(c.stopSend) })
	c.wmu.Lock()
	c.ended = true
	c.wmu.Unlock()
	_ = c.conn.Close()
	c.emit(media.SimEvent{Kind: media.SimClosed, Reason: reason})
}

func (c *Client) emit(ev media.SimEvent) bool {
	select {
	case c.events <- ev:
		return true
	case <-c.done:
		return false
	}
}
