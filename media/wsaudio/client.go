package wsaudio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/resample"
)

// ClientSpec is what a platform's simulated client passes to Dial: how its side of the
// protocol looks.
type ClientSpec struct {
	// Transport names the platform in error messages.
	Transport string
	// Subprotocol, when set, is offered and must be accepted by the server.
	Subprotocol string
	// Header is sent with the upgrade request (credentials, Origin).
	Header http.Header
	// First is the metadata text message sent right after the upgrade.
	First []byte
	// Rate is the sample rate of the caller audio on the wire: 8000 or 16000.
	Rate int
	// BinaryRate is the rate of the audio the server sends in binary messages; 0 means the
	// server sends none (a binary message is then a protocol error).
	BinaryRate int
	// ExactFrames requires each binary message from the server to be one 20 ms frame.
	ExactFrames bool
	// Text handles a text message from the server through the Client's Audio, Mark and
	// Cleared methods; an error is the server breaking the protocol.
	Text func(c *Client, msg []byte) error
	// Rejected and Closed are the platform's sentinels for a refused upgrade and for use of a
	// closed client.
	Rejected, Closed error
}

// ClientOption configures a simulated client.
type ClientOption func(*clientOptions)

type clientOptions struct {
	realtime bool
	prompts  *media.PromptIndex
	buffer   int
	dialer   *websocket.Dialer
}

// WithRealtime makes the client keep a playback clock, as the platform does: a mark is
// reported (and acknowledged to the server, where the platform does that) only when the audio
// sent before it has played in real time, and a clear drops what has not played. Off (the
// default), playback is instant.
func WithRealtime(on bool) ClientOption { return func(o *clientOptions) { o.realtime = on } }

// WithPrompts makes the client recognise the prompts in idx in the audio the server sends, for
// platforms without marks (jambonz, FreeSWITCH): each is reported as SimMark named after the
// clip's ID once the clip has been received whole, and SimPlayed once played (at once, or with
// WithRealtime in real time), as if the platform had marks. Prompts are recognised by their
// first two frames (media.PromptIndex) at the start of a message, where the adapters start
// every prompt; they arrive unchanged at 8 kHz and, at 16 kHz, as resample.UpClip of them,
// whose even samples — what SimAudio carries — are the original.
func WithPrompts(idx *media.PromptIndex) ClientOption {
	return func(o *clientOptions) { o.prompts = idx }
}

// WithEventBuffer sets the capacity of the Events channel (default 256).
func WithEventBuffer(n int) ClientOption { return func(o *clientOptions) { o.buffer = n } }

// WithDialer sets the WebSocket dialer (default: 10 s handshake timeout). Its Subprotocols are
// replaced by the platform's.
func WithDialer(d *websocket.Dialer) ClientOption { return func(o *clientOptions) { o.dialer = d } }

// Client is the core of a simulated platform: it dials the server, sends the metadata, caller
// audio and control messages, and turns what the server sends into media.SimEvents. Its
// methods are safe for concurrent use.
type Client struct {
	conn   *websocket.Conn
	spec   ClientSpec
	opts   clientOptions
	events chan media.SimEvent

	wmu     sync.Mutex // serialises writes and the send-side state below
	wclosed bool
	up      resample.Up
	upBuf   []int16
	pend    []int16 // caller audio at the wire rate not yet a whole frame
	wbuf    []byte

	pmu     sync.Mutex // playback clock and prompt recognition
	playEnd time.Time
	due     []dueItem
	wake    chan struct{}
	head    []int16     // opening samples of a message being matched against the prompts
	recClip *media.Clip // prompt being received
	recLeft int         // samples of it still to come
	err     error       // the server's first protocol error

	closeOnce  sync.Once
	done       chan struct{} // Close gave up waiting; event sends stop blocking
	readerExit chan struct{}
	readerDone chan struct{}
}

// dueItem is a mark waiting for its audio to play.
type dueItem struct {
	name string
	ack  []byte
	at   time.Time
}

// Dial opens a stream to rawURL (ws://, wss://, or http(s):// meaning the same) as the platform
// does and sends spec.First. It returns an error wrapping spec.Rejected when the server refuses
// the upgrade or the subprotocol.
func Dial(ctx context.Context, rawURL string, spec ClientSpec, opts ...ClientOption) (*Client, error) {
	o := clientOptions{buffer: 256}
	for _, opt := range opts {
		opt(&o)
	}
	if o.buffer <= 0 {
		o.buffer = 256
	}
	if !ValidRate(spec.Rate) {
		return nil, fmt.Errorf("%s: dial: sample rate %d: want 8000 or 16000", spec.Transport, spec.Rate)
	}
	u, err := WebSocketURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s: dial: %w", spec.Transport, err)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	if o.dialer != nil {
		d = *o.dialer
	}
	d.Subprotocols = nil
	if spec.Subprotocol != "" {
		d.Subprotocols = []string{spec.Subprotocol}
	}
	conn, resp, err := d.DialContext(ctx, u, spec.Header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w: HTTP %d", spec.Rejected, resp.StatusCode)
		}
		return nil, fmt.Errorf("%s: dial: %w", spec.Transport, err)
	}
	if spec.Subprotocol != "" && conn.Subprotocol() != spec.Subprotocol {
		_ = conn.Close() // libwebsockets aborts too (telephony-protocols §8, pitfall 13)
		return nil, fmt.Errorf("%w: server did not select subprotocol %s", spec.Rejected, spec.Subprotocol)
	}
	c := &Client{
		conn:       conn,
		spec:       spec,
		opts:       o,
		events:     make(chan media.SimEvent, o.buffer),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		readerExit: make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	if err := c.SendText(spec.First); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("%s: metadata: %w", spec.Transport, err)
	}
	go c.readLoop()
	return c, nil
}

// WebSocketURL turns http(s):// into ws(s):// and checks the scheme.
func WebSocketURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("url %q: want ws://, wss://, http:// or https://", raw)
	}
	return u.String(), nil
}

// Events returns what the client observed; the channel closes after SimClosed.
func (c *Client) Events() <-chan media.SimEvent { return c.events }

// Err returns the first protocol error the server made, or nil.
func (c *Client) Err() error {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return c.err
}

// SendText sends one text message.
func (c *Client) SendText(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(websocket.TextMessage, msg)
}

func (c *Client) writeLocked(typ int, msg []byte) error {
	if c.wclosed {
		return c.spec.Closed
	}
	if err := c.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	if err := c.conn.WriteMessage(typ, msg); err != nil {
		if errors.Is(err, websocket.ErrCloseSent) {
			return c.spec.Closed
		}
		return err
	}
	return nil
}

// SendAudio sends caller audio given as 8 kHz PCM, converted to the wire rate (resample.Up at
// 16 kHz), as binary L16 messages of one 20 ms frame each; a trailing part frame waits for the
// next call. It does not pace: call it every 20 ms for real-time audio.
func (c *Client) SendAudio(pcm []int16) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return c.spec.Closed
	}
	src := pcm
	if c.spec.Rate == Rate16k {
		c.upBuf = c.up.Process(c.upBuf[:0], pcm)
		src = c.upBuf
	}
	c.pend = append(c.pend, src...)
	fs := c.spec.Rate / 50
	off := 0
	for ; len(c.pend)-off >= fs; off += fs {
		c.wbuf = AppendL16(c.wbuf[:0], c.pend[off:off+fs])
		if err := c.writeLocked(websocket.BinaryMessage, c.wbuf); err != nil {
			c.pend = c.pend[:copy(c.pend, c.pend[off:])]
			return err
		}
	}
	c.pend = c.pend[:copy(c.pend, c.pend[off:])]
	return nil
}

// Close closes the stream with 1000, as the platform does when the caller hangs up, and waits
// up to two seconds for the server's close frame and the client's goroutines. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.wmu.Lock()
		if !c.wclosed {
			_ = c.conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, "caller hung up"), time.Now().Add(time.Second))
			c.wclosed = true
		}
		c.wmu.Unlock()
		t := time.NewTimer(closeGrace)
		select {
		case <-c.readerExit:
		case <-t.C:
		}
		t.Stop()
		close(c.done)
		_ = c.conn.Close()
		<-c.readerDone
	})
	return nil
}

// emit delivers ev, blocking while the buffer is full until Close gives up on the consumer.
func (c *Client) emit(ev media.SimEvent) {
	select {
	case c.events <- ev:
		return
	default:
	}
	select {
	case c.events <- ev:
	case <-c.done:
	}
}

// readLoop reads the server's messages until the stream closes, then emits SimClosed.
func (c *Client) readLoop() {
	defer close(c.readerDone)
	var playerDone chan struct{}
	if c.opts.realtime {
		playerDone = make(chan struct{})
		go c.player(playerDone)
	}
	closed := media.SimEvent{Kind: media.SimClosed}
	broken := false
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				closed.Code, closed.Reason = ce.Code, ce.Text
			} else {
				closed.Code = websocket.CloseAbnormalClosure
			}
			break
		}
		if broken {
			continue // waiting for the server's close frame
		}
		if err := c.handle(typ, data); err != nil {
			broken = true
			c.pmu.Lock()
			if c.err == nil {
				c.err = err
			}
			c.pmu.Unlock()
			c.wmu.Lock()
			if !c.wclosed {
				_ = c.conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseProtocolError, truncReason(err.Error())), time.Now().Add(time.Second))
				c.wclosed = true
			}
			c.wmu.Unlock()
		}
	}
	close(c.readerExit)
	c.wmu.Lock()
	c.wclosed = true
	c.wmu.Unlock()
	_ = c.conn.Close()
	if playerDone != nil {
		<-playerDone
	}
	c.emit(closed)
	close(c.events)
}

func (c *Client) handle(typ int, data []byte) error {
	if typ == websocket.TextMessage {
		return c.spec.Text(c, data)
	}
	if c.spec.BinaryRate == 0 {
		return fmt.Errorf("%w: server sent a binary message; %s takes audio only in text messages", media.ErrProtocol, c.spec.Transport)
	}
	if fb := FrameBytes(c.spec.BinaryRate); c.spec.ExactFrames && len(data) != fb || len(data) == 0 || len(data)%2 != 0 {
		return fmt.Errorf("%w: server sent a binary message of %d bytes; want %s", media.ErrProtocol, len(data), frameWant(c.spec.ExactFrames, fb))
	}
	return c.Audio(data, c.spec.BinaryRate)
}

func frameWant(exact bool, fb int) string {
	if exact {
		return fmt.Sprintf("exactly %d (one 20 ms frame)", fb)
	}
	return "whole 16-bit samples"
}

// Audio is for a platform's Text handler (and binary messages): the server sent audio, L16 at
// rate 8000 or 16000. It is reported as SimAudio at 8 kHz — at 16 kHz the even samples, which for audio
// made by resample.UpClip are the 8 kHz original — and advances the playback clock.
func (c *Client) Audio(l16 []byte, rate int) error {
	if !ValidRate(rate) || len(l16)%2 != 0 || len(l16) == 0 {
		return fmt.Errorf("%w: server audio of %d bytes at %d Hz", media.ErrProtocol, len(l16), rate)
	}
	pcm := DecodeL16(make([]int16, 0, len(l16)/2), l16)
	if rate == Rate16k {
		n := 0
		for i := 0; i < len(pcm); i += 2 {
			pcm[n] = pcm[i]
			n++
		}
		pcm = pcm[:n]
	}
	c.pmu.Lock()
	now := time.Now()
	if c.playEnd.Before(now) {
		c.playEnd = now
	}
	c.playEnd = c.playEnd.Add(time.Duration(len(pcm)) * time.Second / media.SampleRate)
	var recognised *media.Clip
	if c.opts.prompts != nil {
		recognised = c.recognise(pcm)
	}
	c.pmu.Unlock()
	c.emit(media.SimEvent{Kind: media.SimAudio, Audio: pcm})
	if recognised != nil {
		return c.Mark(recognised.ID(), nil)
	}
	return nil
}

// recognise follows the prompts in the server's audio (pmu held); it returns a clip whose
// audio has just been received in full. Matching starts only at a message boundary, where
// the adapters start every prompt.
func (c *Client) recognise(pcm []int16) *media.Clip {
	if c.recClip != nil {
		c.recLeft -= len(pcm)
		if c.recLeft > 0 {
			return nil
		}
		clip := c.recClip
		c.recClip = nil
		return clip
	}
	c.head = append(c.head, pcm...)
	if len(c.head) < 2*media.FrameSamples {
		return nil
	}
	clip, ok := c.opts.prompts.Match(c.head[:2*media.FrameSamples])
	got := len(c.head)
	c.head = c.head[:0]
	if !ok {
		return nil
	}
	if left := clip.Frames()*media.FrameSamples - got; left > 0 {
		c.recClip, c.recLeft = clip, left
		return nil
	}
	return clip
}

// Mark is for a platform's Text handler: the server sent mark name. It is reported as
// SimMark at once; then — at once, or with WithRealtime when the audio received before it has
// played — the client reports SimPlayed and sends ack (if not nil), as the platform would.
func (c *Client) Mark(name string, ack []byte) error {
	c.emit(media.SimEvent{Kind: media.SimMark, Mark: name})
	if !c.opts.realtime {
		return c.settle(name, ack)
	}
	c.pmu.Lock()
	if now := time.Now(); c.playEnd.Before(now) {
		c.playEnd = now
	}
	c.due = append(c.due, dueItem{name: name, ack: ack, at: c.playEnd})
	c.pmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// settle reports mark name played, then acknowledges it to the server.
func (c *Client) settle(name string, ack []byte) error {
	c.emit(media.SimEvent{Kind: media.SimPlayed, Mark: name})
	if ack != nil {
		if err := c.SendText(ack); err != nil && !errors.Is(err, c.spec.Closed) {
			return err
		}
	}
	return nil
}

// Cleared is for a platform's Text handler: the server cleared the queue (barge-in). Audio
// not yet played and the marks after it are dropped (no SimPlayed, no acknowledgement),
// SimClear is reported, and reply (if not nil) is sent.
func (c *Client) Cleared(reply []byte) error {
	c.pmu.Lock()
	c.due = nil
	c.playEnd = time.Now()
	c.head, c.recClip = c.head[:0], nil
	c.pmu.Unlock()
	c.emit(media.SimEvent{Kind: media.SimClear})
	if reply != nil {
		if err := c.SendText(reply); err != nil && !errors.Is(err, c.spec.Closed) {
			return err
		}
	}
	return nil
}

// player settles marks when the audio before them has played (WithRealtime).
func (c *Client) player(done chan struct{}) {
	defer close(done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		c.pmu.Lock()
		wait := time.Duration(-1)
		var item *dueItem
		if len(c.due) > 0 {
			if wait = time.Until(c.due[0].at); wait <= 0 {
				it := c.due[0]
				c.due = c.due[1:]
				item = &it
			}
		}
		c.pmu.Unlock()
		if item != nil {
			_ = c.settle(item.name, item.ack)
			continue
		}
		var tc <-chan time.Time
		if wait > 0 {
			t.Reset(wait)
			tc = t.C
		}
		select {
		case <-c.readerExit:
			return
		case <-c.wake:
		case <-tc:
		}
	}
}
