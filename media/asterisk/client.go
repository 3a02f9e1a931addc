package asterisk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
)

// DialOptions describe the call a Client plays and how it behaves.
type DialOptions struct {
	// Username and Password are sent with HTTP Basic, as websocket_client.conf does.
	Username, Password string
	// Format is the media format: "ulaw" (default), "alaw", "slin" or "slin16".
	Format string
	// JSON selects the JSON control message format (f(json) in the dial string); the
	// default is the plain-text format.
	JSON bool
	// ConnectionID, Channel and ChannelID fill MEDIA_START; "" generates them.
	ConnectionID, Channel, ChannelID string
	// From, To, Verstat and Params (request, lang, account) are added to the URL as query
	// parameters, as Dial(WebSocket/...v(from=...,to=...)) does.
	From, To, Verstat string
	Params            map[string]string
	// Vars are the channel variables of a JSON MEDIA_START (e.g. CALLPROOF_FROM).
	Vars map[string]string
	// Realtime makes the client keep Asterisk's playback clock: MEDIA_BUFFERING_COMPLETED and
	// QUEUE_DRAINED come when the audio before them has played in real time, FLUSH_MEDIA
	// discards what has not, and MEDIA_XOFF/MEDIA_XON are sent at 900/800 queued frames. Off
	// (the default), playback is instant.
	Realtime bool
	// EarlyFrames is how many 20 ms frames of silence to send before MEDIA_START, as
	// Asterisk sometimes does (asterisk issue #1712).
	EarlyFrames int
	// EventBuffer is the capacity of the Events channel (default 256).
	EventBuffer int
	// Dialer is the WebSocket dialer (default: 10 s handshake timeout).
	Dialer *websocket.Dialer
}

// Client plays Asterisk's side of a chan_websocket connection (outbound mode: Asterisk dials
// the application). It sends MEDIA_START, caller audio as binary frames and DTMF_END, and it
// plays what the server sends like chan_websocket does, answering STOP_MEDIA_BUFFERING with
// MEDIA_BUFFERING_COMPLETED once the prompt has "played". It is strict where Asterisk is
// unforgiving: a binary message over 65 500 bytes, a control message over 128 bytes, an
// unknown command, STOP without START, or media outside buffering that is not whole frames
// make it close the connection with 1008 and report why. Its methods are safe for concurrent
// use.
type Client struct {
	conn      *websocket.Conn
	o         DialOptions
	codec     codec
	ctl       ctlFormat
	channelID string
	connID    string
	events    chan media.SimEvent

	wmu     sync.Mutex // serialises writes
	wclosed bool

	pmu       sync.Mutex // playback state
	buffering bool
	hungUp    bool // HANGUP received
	playEnd   time.Time
	due       []dueItem
	xoff      bool
	wake      chan struct{}

	closeOnce  sync.Once
	done       chan struct{} // Close called: event sends stop blocking
	readerDone chan struct{}
	playerDone chan struct{}
}

// dueItem is a notification the realtime client sends when playback reaches it.
type dueItem struct {
	at    time.Time
	event string // MEDIA_BUFFERING_COMPLETED, QUEUE_DRAINED, MEDIA_MARK_PROCESSED
	id    string
}

// Dial connects to rawURL (ws://, wss://, or http(s):// meaning the same) and sends
// MEDIA_START. It returns an error wrapping ErrRejected when the server refuses the upgrade.
func Dial(ctx context.Context, rawURL string, o DialOptions) (*Client, error) {
	if o.Format == "" {
		o.Format = "ulaw"
	}
	c, ok := codecs[o.Format]
	if !ok {
		return nil, fmt.Errorf("asterisk: dial: format %q: want ulaw, alaw, slin or slin16", o.Format)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("asterisk: dial: %w", err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return nil, fmt.Errorf("asterisk: dial %q: want a ws:// or wss:// URL", rawURL)
	}
	q := u.Query()
	for k, v := range map[string]string{"from": o.From, "to": o.To, "verstat": o.Verstat} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for k, v := range o.Params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	if o.ConnectionID == "" {
		o.ConnectionID = randomID()
	}
	if o.Channel == "" {
		o.Channel = "WebSocket/callproof/0x" + o.ConnectionID[:12]
	}
	if o.ChannelID == "" {
		o.ChannelID = fmt.Sprintf("%d.%d", time.Now().Unix(), time.Now().Nanosecond()%1000)
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = 256
	}
	hdr := http.Header{}
	if o.Username != "" || o.Password != "" {
		r := http.Request{Header: hdr}
		r.SetBasicAuth(o.Username, o.Password)
	}
	d := o.Dialer
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	}
	conn, resp, err := d.DialContext(ctx, u.String(), hdr)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w: HTTP %d", ErrRejected, resp.StatusCode)
		}
		return nil, fmt.Errorf("asterisk: dial: %w", err)
	}
	cl := &Client{
		conn:       conn,
		o:          o,
		codec:      c,
		ctl:        formatPlain,
		channelID:  o.ChannelID,
		connID:     o.ConnectionID,
		events:     make(chan media.SimEvent, o.EventBuffer),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		playerDone: make(chan struct{}),
	}
	if o.JSON {
		cl.ctl = formatJSON
	}
	for range o.EarlyFrames {
		if err := cl.write(websocket.BinaryMessage, c.encode(make([]int16, media.FrameSamples))); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	if err := cl.write(websocket.TextMessage, cl.mediaStart()); err != nil {
		_ = conn.Close()
		return nil, err
	}
	go cl.readLoop()
	if o.Realtime {
		go cl.player()
	} else {
		close(cl.playerDone)
	}
	return cl, nil
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

func (c *Client) mediaStart() []byte {
	if c.ctl == formatJSON {
		vars := c.o.Vars
		if vars == nil {
			vars = map[string]string{}
		}
		b, _ := json.Marshal(map[string]any{
			"event": evMediaStart, "connection_id": c.connID, "channel": c.o.Channel,
			"channel_id": c.channelID, "format": c.codec.name, "optimal_frame_size": c.codec.frameBytes(),
			"ptime": 20, "channel_variables": vars,
		})
		return b
	}
	return fmt.Appendf(nil, "%s connection_id:%s channel:%s channel_id:%s format:%s optimal_frame_size:%d ptime:20",
		evMediaStart, c.connID, c.o.Channel, c.channelID, c.codec.name, c.codec.frameBytes())
}

// event formats a notification in the call's control format.
func (c *Client) event(name string, fields ...string) []byte {
	if c.ctl == formatJSON {
		m := map[string]string{"event": name, "channel_id": c.channelID}
		for i := 0; i+1 < len(fields); i += 2 {
			m[fields[i]] = fields[i+1]
		}
		b, _ := json.Marshal(m)
		return b
	}
	s := name
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i] == "correlation_id" { // bare id, as Asterisk's plain format has it
			if fields[i+1] != "" {
				s += " " + fields[i+1]
			}
			continue
		}
		s += " " + fields[i] + ":" + fields[i+1]
	}
	return []byte(s)
}

// ConnectionID is the connection id sent in MEDIA_START.
func (c *Client) ConnectionID() string { return c.connID }

// Events returns what the client observed: SimAudio for each binary message (8 kHz PCM),
// SimMark when a prompt has played (Mark is its STOP_MEDIA_BUFFERING id), SimClear for each
// FLUSH_MEDIA, and finally SimClosed with the server's close code and reason (1006 when the
// connection dropped without one; a reason starting "asterisk client:" when the client closed
// because the server broke the protocol). The channel then closes.
func (c *Client) Events() <-chan media.SimEvent { return c.events }

// SendAudio sends 8 kHz caller audio as 20 ms binary frames in the call's format, the last
// padded with silence.
func (c *Client) SendAudio(pcm []int16) error {
	frame := make([]int16, media.FrameSamples)
	for off := 0; off < len(pcm); off += media.FrameSamples {
		clear(frame)
		copy(frame, pcm[off:min(off+media.FrameSamples, len(pcm))])
		if err := c.write(websocket.BinaryMessage, c.codec.encode(frame)); err != nil {
			return err
		}
	}
	return nil
}

// SendDTMF sends DTMF_END for one digit (0-9, *, #, A-D).
func (c *Client) SendDTMF(d byte) error {
	if strings.IndexByte("0123456789*#ABCD", d) < 0 {
		return fmt.Errorf("asterisk: %q is not a DTMF digit", d)
	}
	if c.ctl == formatJSON {
		return c.write(websocket.TextMessage, c.event(evDTMFEnd, "digit", string(d)))
	}
	return c.write(websocket.TextMessage, fmt.Appendf(nil, "%s digit:%c channel_id:%s", evDTMFEnd, d, c.channelID))
}

// SendControl sends a raw text message (MEDIA_XOFF, MEDIA_XON, or anything a test needs).
func (c *Client) SendControl(msg string) error { return c.write(websocket.TextMessage, []byte(msg)) }

// SendBinary sends a raw binary message (for tests of malformed media).
func (c *Client) SendBinary(b []byte) error { return c.write(websocket.BinaryMessage, b) }

// Hangup closes the connection with 1000 as Asterisk does when the caller hangs up, then waits
// for the server's close; Events reports SimClosed.
func (c *Client) Hangup() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return ErrClientClosed
	}
	c.wclosed = true
	return c.conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(writeTimeout))
}

// Close closes the connection at once and waits for the client's goroutines. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.wmu.Lock()
		c.wclosed = true
		c.wmu.Unlock()
		_ = c.conn.Close()
	})
	<-c.readerDone
	<-c.playerDone
	return nil
}

func (c *Client) write(typ int, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return ErrClientClosed
	}
	if err := c.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	if err := c.conn.WriteMessage(typ, b); err != nil {
		c.wclosed = true
		return fmt.Errorf("asterisk: write: %w", err)
	}
	return nil
}

func (c *Client) emit(ev media.SimEvent) bool {
	select {
	case c.events <- ev:
		return true
	case <-c.done:
		return false
	}
}

// readLoop plays the server's messages until the connection ends.
func (c *Client) readLoop() {
	defer close(c.readerDone)
	defer close(c.events)
	var dec decimator
	closed := media.SimEvent{Kind: media.SimClosed, Code: websocket.CloseAbnormalClosure}
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				closed.Code, closed.Reason = ce.Code, ce.Text
			}
			break
		}
		var v *protoError
		if typ == websocket.BinaryMessage {
			v = c.onMedia(data, &dec)
		} else {
			v = c.onCommand(data)
		}
		if v != nil {
			closed.Code, closed.Reason = v.code, "asterisk client: "+v.msg
			c.wmu.Lock()
			if !c.wclosed {
				c.wclosed = true
				_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(v.code, truncReason(v.msg)),
					time.Now().Add(time.Second))
			}
			c.wmu.Unlock()
			break
		}
	}
	_ = c.conn.Close()
	c.pmu.Lock() // nothing is played after the end: SimClosed is the last event
	c.due, c.hungUp = nil, true
	c.pmu.Unlock()
	c.poke()
	c.emit(closed)
}

// onMedia checks and "plays" one binary message.
func (c *Client) onMedia(data []byte, dec *decimator) *protoError {
	c.pmu.Lock()
	buffering, hungUp := c.buffering, c.hungUp
	c.pmu.Unlock()
	switch {
	case hungUp:
		return nil
	case len(data) > maxMessage:
		return violation(closeTooBig, "binary message of %d bytes: Asterisk closes the socket and hangs up above %d", len(data), maxMessage)
	case !buffering && len(data)%c.codec.frameBytes() != 0:
		return violation(closePolicy, "binary message of %d bytes outside START_MEDIA_BUFFERING is not whole %d-byte frames; Asterisk drops the rest", len(data), c.codec.frameBytes())
	case len(data)%c.codec.sampleBytes != 0:
		return violation(closePolicy, "binary message of %d bytes is not whole %s samples", len(data), c.codec.name)
	}
	var pcm []int16
	n := len(data) / c.codec.sampleBytes
	if c.codec.rate == media.SampleRate {
		pcm = c.codec.decode(make([]int16, n), nil, nil, data)
	} else {
		pcm = c.codec.decode(make([]int16, n), make([]int16, n), dec, data)
	}
	if c.o.Realtime {
		d := time.Duration(len(data)) * time.Second / time.Duration(c.codec.secondBytes())
		now := time.Now()
		c.pmu.Lock()
		if c.playEnd.Before(now) {
			c.playEnd = now
		}
		c.playEnd = c.playEnd.Add(d)
		queued := c.playEnd.Sub(now) / media.FrameDuration
		sendXOFF := !c.xoff && queued >= 900
		c.xoff = c.xoff || sendXOFF
		c.pmu.Unlock()
		if sendXOFF {
			_ = c.write(websocket.TextMessage, c.event(evXOFF))
			c.poke()
		}
	}
	c.emit(media.SimEvent{Kind: media.SimAudio, Audio: pcm})
	return nil
}

// parseCommand reads a command in the call's control format.
func (c *Client) parseCommand(data []byte) (cmd, arg string, v *protoError) {
	if c.ctl == formatJSON {
		var m struct {
			Command       string `json:"command"`
			CorrelationID string `json:"correlation_id"`
		}
		if err := json.Unmarshal(data, &m); err != nil || m.Command == "" {
			return "", "", violation(closePolicy, "command is not a JSON {\"command\":...} object")
		}
		return m.Command, m.CorrelationID, nil
	}
	s := strings.TrimSpace(string(data))
	cmd, arg, _ = strings.Cut(s, " ")
	return cmd, strings.TrimSpace(arg), nil
}

// onCommand executes one control message as chan_websocket does.
func (c *Client) onCommand(data []byte) *protoError {
	if len(data) > maxCommand {
		return violation(closePolicy, "control message of %d bytes: Asterisk ignores those over %d", len(data), maxCommand)
	}
	cmd, arg, v := c.parseCommand(data)
	if v != nil {
		return v
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.hungUp {
		return nil
	}
	now := time.Now()
	end := c.playEnd
	if end.Before(now) || !c.o.Realtime {
		end = now
	}
	switch cmd {
	case cmdAnswer, cmdPause, cmdContinue:
	case cmdHangup:
		c.hungUp = true
		c.due = nil
		go func() { // Asterisk hangs the channel up and closes with 1000
			c.wmu.Lock()
			defer c.wmu.Unlock()
			if !c.wclosed {
				c.wclosed = true
				_ = c.conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			}
		}()
	case cmdStartBuffering:
		if c.buffering {
			return violation(closePolicy, "START_MEDIA_BUFFERING while buffering is already active")
		}
		c.buffering = true
	case cmdStopBuffering:
		if !c.buffering {
			return violation(closePolicy, "STOP_MEDIA_BUFFERING without START_MEDIA_BUFFERING")
		}
		c.buffering = false
		c.schedule(dueItem{at: end, event: evBufferingEnd, id: arg})
	case cmdMarkMedia:
		c.schedule(dueItem{at: end, event: evMarkDone, id: arg})
	case cmdReportDrained:
		c.schedule(dueItem{at: end, event: evQueueDrained})
	case cmdFlush:
		c.buffering = false
		kept := c.due[:0]
		for _, d := range c.due {
			if d.event == evQueueDrained { // a flag, not a queued frame: the flush brings it forward
				d.at = now
				kept = append(kept, d)
			}
		}
		c.due = kept
		c.playEnd = now
		c.emitLocked(media.SimEvent{Kind: media.SimClear})
		c.poke()
	case cmdGetStatus:
		go func() {
			_ = c.write(websocket.TextMessage, c.event(evStatus, "queue_length", "0", "xon_level", "800",
				"xoff_level", "900", "queue_full", "false", "bulk_media", "false", "media_paused", "false"))
		}()
	default:
		return violation(closePolicy, "unknown command %s", quoteName(cmd))
	}
	return nil
}

// schedule queues a notification (pmu held). Without a playback clock it is sent at once.
func (c *Client) schedule(d dueItem) {
	if !c.o.Realtime {
		c.fire(d)
		return
	}
	c.due = append(c.due, d)
	c.poke()
}

// fire sends a notification (pmu held; the write takes wmu only).
func (c *Client) fire(d dueItem) {
	if d.event == evBufferingEnd {
		c.emitLocked(media.SimEvent{Kind: media.SimMark, Mark: d.id})
	}
	var b []byte
	if d.event == evQueueDrained {
		b = c.event(d.event)
	} else {
		b = c.event(d.event, "correlation_id", d.id)
	}
	_ = c.write(websocket.TextMessage, b)
}

// emitLocked emits an event while pmu is held; it gives up when the client is closing.
func (c *Client) emitLocked(ev media.SimEvent) { c.emit(ev) }

func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// player sends due notifications and MEDIA_XON on the realtime clock.
func (c *Client) player() {
	defer close(c.playerDone)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		c.pmu.Lock()
		next := now.Add(time.Hour)
		kept := c.due[:0]
		var fire []dueItem
		for _, d := range c.due {
			if !d.at.After(now) {
				fire = append(fire, d)
				continue
			}
			kept = append(kept, d)
			if d.at.Before(next) {
				next = d.at
			}
		}
		c.due = kept
		sendXON := false
		if c.xoff {
			xonAt := c.playEnd.Add(-800 * media.FrameDuration)
			if !xonAt.After(now) {
				c.xoff, sendXON = false, true
			} else if xonAt.Before(next) {
				next = xonAt
			}
		}
		for _, d := range fire {
			c.fire(d)
		}
		c.pmu.Unlock()
		if sendXON {
			_ = c.write(websocket.TextMessage, c.event(evXON))
		}
		t.Reset(time.Until(next))
		select {
		case <-c.done:
			return
		case <-c.readerDone:
			return
		case <-c.wake:
		case <-t.C:
		}
	}
}
