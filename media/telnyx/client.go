package telnyx

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsjson"
)

// CallParams describe the call a Client streams, as Telnyx would.
type CallParams struct {
	// CallControlID, CallSessionID and StreamID identify the call and stream; "" generates a
	// random v3:… call control id and UUIDs.
	CallControlID, CallSessionID, StreamID string
	// From and To are the caller's and the dialled number, sent in start as Telnyx does.
	From, To string
	// Params become start.custom_parameters (request, lang, account, verstat, ...).
	Params map[string]string
	// ClientState is sent as start.client_state, verbatim (Telnyx echoes the base64 string
	// the application gave streaming_start); ClientState builds one from parameters.
	ClientState string
	// Encoding is the stream's media_format.encoding: "PCMU" (default), "PCMA" or "L16"
	// (big-endian, as RTP carries it). Audio both ways uses it.
	Encoding string
	// SampleRate is media_format.sample_rate; default 8000.
	SampleRate int
	// AuthToken, when set, is presented as Telnyx presents stream_auth_token: in the
	// X-Telnyx-Streaming-Auth-Token header of the upgrade and in the connected frame.
	AuthToken string
}

// ClientState encodes stream parameters as a client_state value the server reads them from:
// base64 of a JSON object of strings.
func ClientState(params map[string]string) string {
	b, _ := json.Marshal(params)
	return base64.StdEncoding.EncodeToString(b)
}

// ClientOption configures a Client.
type ClientOption func(*clientOptions)

type clientOptions struct {
	realtime bool
	reorder  int
	buffer   int
	dialer   *websocket.Dialer
}

// WithRealtimePlayback makes the client keep a playback clock: a mark is echoed only when the
// audio queued before it has played in real time, and a clear drops the queue and echoes the
// pending marks at once, as Telnyx does. Off (the default), marks are echoed as soon as they
// are read, as Telnyx does when nothing is queued.
func WithRealtimePlayback(on bool) ClientOption { return func(o *clientOptions) { o.realtime = on } }

// WithOutOfOrder makes SendAudio deliver its frames out of order, as Telnyx may: each group
// of n consecutive frames goes out reversed (n = 2 swaps neighbours). Frames keep the
// sequence_number, chunk and timestamp of their place in the audio. n < 2 keeps the order.
func WithOutOfOrder(n int) ClientOption { return func(o *clientOptions) { o.reorder = n } }

// WithEventBuffer sets the capacity of the Events channel (default 256).
func WithEventBuffer(n int) ClientOption { return func(o *clientOptions) { o.buffer = n } }

// WithDialer sets the WebSocket dialer (default: 10 s handshake timeout, no proxy).
func WithDialer(d *websocket.Dialer) ClientOption { return func(o *clientOptions) { o.dialer = d } }

// Client plays Telnyx's side of a bidirectional (RTP mode) media stream: it dials the server
// with the stream token, sends "connected" and "start", then caller audio, digits and "stop",
// echoes the marks the server sends, and answers anything Telnyx would not accept with an
// error frame, as Telnyx does. Its methods are safe for concurrent use.
type Client struct {
	peer  *wsjson.Peer[media.SimEvent]
	p     CallParams
	opts  clientOptions
	codec wsjson.Codec

	// Counters, numbered while holding the peer's write lock so they go out in order.
	seq   uint64
	chunk uint64
	sent  uint64 // samples sent, for timestamps

	emu sync.Mutex
	err error // the server's first protocol error
}

// Dial opens a stream to rawURL (ws://, wss://, or http(s):// meaning the same) and sends
// "connected" and "start" exactly as Telnyx does. It returns an error wrapping ErrRejected
// when the server refuses the upgrade.
func Dial(ctx context.Context, rawURL string, p CallParams, opts ...ClientOption) (*Client, error) {
	o := clientOptions{buffer: 256}
	for _, opt := range opts {
		opt(&o)
	}
	u, err := wsjson.DialURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("telnyx: dial %q: %w", rawURL, err)
	}
	if p.Encoding == "" {
		p.Encoding = "PCMU"
	}
	if p.SampleRate == 0 {
		p.SampleRate = media.SampleRate
	}
	codec, err := codecOf(wsjson.Format{Encoding: p.Encoding, SampleRate: int64(p.SampleRate)})
	if err != nil {
		return nil, fmt.Errorf("telnyx: dial: %w", err)
	}
	if p.CallControlID == "" {
		p.CallControlID = "v3:" + randomHex(24)
	}
	if p.CallSessionID == "" {
		p.CallSessionID = uuid()
	}
	if p.StreamID == "" {
		p.StreamID = uuid()
	}
	hdr := http.Header{}
	if p.AuthToken != "" {
		hdr.Set(TokenHeader, p.AuthToken)
	}
	conn, status, err := wsjson.Dial(ctx, o.dialer, u, hdr)
	if status != 0 {
		return nil, fmt.Errorf("%w: HTTP %d", ErrRejected, status)
	}
	if err != nil {
		return nil, fmt.Errorf("telnyx: dial: %w", err)
	}
	c := &Client{p: p, opts: o, codec: codec}
	c.peer = wsjson.NewPeer(conn, wsjson.PeerConfig[media.SimEvent]{
		Buffer:    o.buffer,
		Realtime:  o.realtime,
		Handle:    c.handle,
		Echo:      c.echo,
		Closed:    closedEvent,
		ErrClosed: ErrClientClosed,
	})
	connected := clientMsg{Event: "connected", Version: "1.0.0"}
	if p.AuthToken != "" {
		connected.Connected = &clientConnected{Token: p.AuthToken}
	}
	err = c.send(connected, false)
	if err == nil {
		err = c.send(clientMsg{Event: "start", Start: &clientStart{
			UserID: uuid(), CallControlID: p.CallControlID, CallSessionID: p.CallSessionID,
			From: p.From, To: p.To, ClientState: p.ClientState, CustomParameters: p.Params,
			MediaFormat: clientFormat{Encoding: p.Encoding, SampleRate: p.SampleRate, Channels: 1},
		}}, true)
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("telnyx: start: %w", err)
	}
	c.peer.Run()
	return c, nil
}

func closedEvent(code int, reason string, _, failure error) media.SimEvent {
	if failure != nil && reason == "" {
		reason = wsjson.TruncReason(failure.Error())
	}
	return media.SimEvent{Kind: media.SimClosed, Code: code, Reason: reason}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// uuid returns a random RFC 9562 version 4 UUID.
func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// clientMsg is a message the client sends, in Telnyx's field order.
type clientMsg struct {
	Event      string           `json:"event"`
	Version    string           `json:"version,omitempty"`
	Seq        string           `json:"sequence_number,omitempty"`
	StreamID   string           `json:"stream_id,omitempty"`
	OccurredAt string           `json:"occurred_at,omitempty"`
	Connected  *clientConnected `json:"connected,omitempty"`
	Start      *clientStart     `json:"start,omitempty"`
	Media      *clientMedia     `json:"media,omitempty"`
	DTMF       *clientDTMF      `json:"dtmf,omitempty"`
	Mark       *clientMark      `json:"mark,omitempty"`
	Stop       *clientStop      `json:"stop,omitempty"`
	Payload    *clientError     `json:"payload,omitempty"`
}

type clientConnected struct {
	Token string `json:"x-telnyx-streaming-auth-token"`
}

type clientStart struct {
	UserID           string            `json:"user_id"`
	CallControlID    string            `json:"call_control_id"`
	CallSessionID    string            `json:"call_session_id"`
	From             string            `json:"from,omitempty"`
	To               string            `json:"to,omitempty"`
	ClientState      string            `json:"client_state,omitempty"`
	CustomParameters map[string]string `json:"custom_parameters,omitempty"`
	MediaFormat      clientFormat      `json:"media_format"`
}

type clientFormat struct {
	Encoding   string `json:"encoding"`
	SampleRate int    `json:"sample_rate"`
	Channels   int    `json:"channels"`
}

type clientMedia struct {
	Track     string `json:"track"`
	Chunk     string `json:"chunk"`
	Timestamp string `json:"timestamp"`
	Payload   string `json:"payload"`
}

type clientDTMF struct {
	Digit string `json:"digit"`
}

type clientMark struct {
	Name string `json:"name"`
}

type clientStop struct {
	UserID        string `json:"user_id"`
	CallControlID string `json:"call_control_id"`
}

type clientError struct {
	Code   int    `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// Params returns the call's parameters, with generated ids filled in.
func (c *Client) Params() CallParams { return c.p }

// Events returns what the client saw: SimAudio for each media message (decoded to 8 kHz
// PCM), SimMark for each mark (echoed at once, or once played with WithRealtimePlayback),
// SimClear, and SimClosed last, after which the channel closes.
func (c *Client) Events() <-chan media.SimEvent { return c.peer.Events() }

// Err returns the first message from the server that Telnyx would have refused (answering
// with an error frame, which the client sends too), wrapped in ErrServerProtocol; nil if none.
func (c *Client) Err() error {
	c.emu.Lock()
	defer c.emu.Unlock()
	return c.err
}

// send writes one message; seq adds the next sequence_number and the stream_id.
func (c *Client) send(m clientMsg, seq bool) error {
	return c.peer.Writes(func(send func([]byte) error) error {
		b, err := c.marshal(m, seq)
		if err != nil {
			return err
		}
		return send(b)
	})
}

// marshal numbers m (when seq) and encodes it; the caller holds the write lock.
func (c *Client) marshal(m clientMsg, seq bool) ([]byte, error) {
	if seq {
		c.seq++
		m.Seq = strconv.FormatUint(c.seq, 10)
		m.StreamID = c.p.StreamID
	}
	return json.Marshal(m)
}

// SendDTMF sends a "dtmf" frame for one key ("0"-"9", "*", "#", "A"-"D").
func (c *Client) SendDTMF(d byte) error {
	if _, ok := wsjson.Digit([]byte{d}); !ok {
		return fmt.Errorf("telnyx: SendDTMF: not a DTMF key")
	}
	return c.send(clientMsg{Event: "dtmf", OccurredAt: time.Now().UTC().Format(time.RFC3339Nano),
		DTMF: &clientDTMF{Digit: string(d)}}, true)
}

// SendAudio sends caller audio (8 kHz PCM) in the stream's codec as inbound media frames of
// 20 ms (the last may be shorter), with chunk counting from 1 and timestamp advancing 20 ms
// a frame; WithOutOfOrder shuffles their delivery. It does not pace: call it every 20 ms for
// real-time audio.
func (c *Client) SendAudio(pcm []int16) error {
	return c.peer.Writes(func(send func([]byte) error) error {
		msgs := make([][]byte, 0, (len(pcm)+media.FrameSamples-1)/media.FrameSamples)
		var enc []byte
		for off := 0; off < len(pcm); off += media.FrameSamples {
			part := pcm[off:min(off+media.FrameSamples, len(pcm))]
			enc = c.codec.Append(enc[:0], part)
			c.chunk++
			b, err := c.marshal(clientMsg{Event: "media", Media: &clientMedia{
				Track:     "inbound",
				Chunk:     strconv.FormatUint(c.chunk, 10),
				Timestamp: strconv.FormatUint(c.sent/(media.SampleRate/1000), 10),
				Payload:   base64.StdEncoding.EncodeToString(enc),
			}}, true)
			if err != nil {
				return err
			}
			msgs = append(msgs, b)
			c.sent += uint64(len(part))
		}
		for _, i := range deliveryOrder(len(msgs), c.opts.reorder) {
			if err := send(msgs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// deliveryOrder is the order n frames go out in: each group of k reversed (k < 2: in order).
func deliveryOrder(n, k int) []int {
	order := make([]int, 0, n)
	if k < 2 {
		k = 1
	}
	for g := 0; g < n; g += k {
		for i := min(g+k, n) - 1; i >= g; i-- {
			order = append(order, i)
		}
	}
	return order
}

// Stop sends "stop", as Telnyx does when the call ends or streaming_stop is called, then
// closes the stream.
func (c *Client) Stop() error {
	err := c.send(clientMsg{Event: "stop", Stop: &clientStop{UserID: uuid(), CallControlID: c.p.CallControlID}}, true)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close closes the stream (close code 1000) and waits, up to two seconds, for the server's
// close frame and the client's goroutines. It is idempotent.
func (c *Client) Close() error { return c.peer.Close() }

// serverMsg is a message from the server.
type serverMsg struct {
	Event string `json:"event"`
	Media *struct {
		Payload string `json:"payload"`
	} `json:"media"`
	Mark *struct {
		Name string `json:"name"`
	} `json:"mark"`
}

// Telnyx's error codes (telephony-protocols §2).
const (
	codeMalformed    = 100003 // malformed_frame
	codeInvalidMedia = 100004 // invalid_media
)

// RTP mode takes 20 ms to 30 s of audio per media message (telephony-protocols §2).
const (
	minMediaSamples = media.FrameSamples
	maxMediaSamples = 30 * media.SampleRate
)

// handle checks and acts on one server message. Telnyx takes media, mark and clear text
// frames (telephony-protocols §2); anything else it answers with an error frame, as the client
// does, recording the first such error for Err.
func (c *Client) handle(typ int, data []byte) error {
	if typ != websocket.TextMessage {
		return c.refuse(codeMalformed, "malformed_frame", "binary frame")
	}
	var m serverMsg
	if err := json.Unmarshal(data, &m); err != nil {
		return c.refuse(codeMalformed, "malformed_frame", "bad JSON")
	}
	switch m.Event {
	case "media":
		if m.Media == nil {
			return c.refuse(codeMalformed, "malformed_frame", "media without media object")
		}
		audio, err := base64.StdEncoding.Strict().DecodeString(m.Media.Payload)
		if err != nil || len(audio)%c.codec.SampleBytes() != 0 {
			return c.refuse(codeInvalidMedia, "invalid_media", "payload is not base64 audio in the stream's codec")
		}
		n := len(audio) / c.codec.SampleBytes()
		if n < minMediaSamples || n > maxMediaSamples {
			return c.refuse(codeInvalidMedia, "invalid_media", fmt.Sprintf("%d samples; RTP mode takes 20 ms to 30 s", n))
		}
		c.peer.Queued(n)
		c.peer.Emit(media.SimEvent{Kind: media.SimAudio, Audio: c.codec.Decode(make([]int16, n), audio)})
	case "mark":
		if m.Mark == nil || m.Mark.Name == "" {
			return c.refuse(codeMalformed, "malformed_frame", "mark without a name")
		}
		return c.peer.Marked(m.Mark.Name, media.SimEvent{Kind: media.SimMark, Mark: m.Mark.Name})
	case "clear":
		return c.peer.Cleared(media.SimEvent{Kind: media.SimClear}, nil)
	default:
		return c.refuse(codeMalformed, "malformed_frame", "unknown event "+strconv.Quote(m.Event))
	}
	return nil
}

// refuse answers a message Telnyx would not take with an error frame and records it.
func (c *Client) refuse(code int, title, detail string) error {
	c.emu.Lock()
	if c.err == nil {
		c.err = fmt.Errorf("%w: %s (%s)", ErrServerProtocol, title, detail)
	}
	c.emu.Unlock()
	err := c.send(clientMsg{Event: "error", StreamID: c.p.StreamID, Payload: &clientError{Code: code, Title: title, Detail: detail}}, false)
	if errors.Is(err, ErrClientClosed) {
		return nil
	}
	return err
}

// echo sends a mark back, as Telnyx does once the audio before it has played or a clear
// discarded it.
func (c *Client) echo(name string, _ bool) error {
	return c.send(clientMsg{Event: "mark", Mark: &clientMark{Name: name}}, true)
}
