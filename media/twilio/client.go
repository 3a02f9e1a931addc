package twilio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsjson"
)

// CallParams describe the call a Client streams, as Twilio would.
type CallParams struct {
	// CallSid, StreamSid and AccountSid identify the call, stream and account; "" generates
	// random CA…, MZ… and AC… ids.
	CallSid, StreamSid, AccountSid string
	// From, To and Verstat become the from, to and verstat customParameters when not "".
	From, To, Verstat string
	// Params are further customParameters (request, lang, account, ...).
	Params map[string]string
	// AuthToken, when set, signs the upgrade request with X-Twilio-Signature over the dialled
	// URL as wss://host/path (or the URL given with WithSignedURL).
	AuthToken string
}

// ClientEvent is something the Client saw on the stream. Kind is one of:
//
//   - "media": a media message; Audio is its μ-law payload, decoded.
//   - "mark": a mark message; Mark is its name and, with WithRecording, Audio is the μ-law
//     received since the previous mark (the prompt).
//   - "played": the client echoed mark Mark back, as Twilio does once the audio before it has
//     played (at once, or in real time with WithRealtimePlayback); Cleared is true when a
//     clear discarded that audio instead.
//   - "clear": a clear message.
//   - "error": the server broke the protocol (Err says how); the client then closes.
//   - "closed": the stream ended, always the last event; CloseCode and CloseText are the
//     server's close frame (1006 when the connection dropped without one).
type ClientEvent struct {
	Kind      string
	Mark      string
	Audio     []byte
	Cleared   bool
	CloseCode int
	CloseText string
	Err       error
}

// Recording is the audio a Client received before one mark.
type Recording struct {
	Mark    string
	Audio   []byte // μ-law
	Cleared bool   // a clear discarded (part of) it
}

// ClientOption configures a Client.
type ClientOption func(*clientOptions)

type clientOptions struct {
	realtime  bool
	record    bool
	noAudio   bool
	signedURL string
	buffer    int
	dialer    *websocket.Dialer
}

// WithRealtimePlayback makes the client keep a playback clock: a mark is echoed only when the
// audio queued before it has played in real time, and a clear drops the queue and echoes the
// pending marks at once, as Twilio does. Off (the default), marks are echoed as soon as they are
// read, as if playback were instant.
func WithRealtimePlayback(on bool) ClientOption { return func(o *clientOptions) { o.realtime = on } }

// WithRecording keeps the audio received before each mark, for Recordings and the "mark"
// event's Audio.
func WithRecording(on bool) ClientOption { return func(o *clientOptions) { o.record = on } }

// WithAudio chooses whether "media" events carry the audio the server sent (the default). Off,
// the client emits no "media" events and keeps no audio, allocating nothing per message: the
// audio still advances the playback clock and Received. Load generators use it.
func WithAudio(on bool) ClientOption { return func(o *clientOptions) { o.noAudio = !on } }

// WithSignedURL sets the URL the signature covers, for a server whose PublicURL differs from
// the address dialled.
func WithSignedURL(u string) ClientOption { return func(o *clientOptions) { o.signedURL = u } }

// WithEventBuffer sets the capacity of the Events channel (default 256).
func WithEventBuffer(n int) ClientOption { return func(o *clientOptions) { o.buffer = n } }

// WithDialer sets the WebSocket dialer (default: 10 s handshake timeout, no proxy).
func WithDialer(d *websocket.Dialer) ClientOption { return func(o *clientOptions) { o.dialer = d } }

// Client plays Twilio's side of a bidirectional media stream: it dials the server, sends
// "connected" and "start", then caller audio, digits and "stop", and echoes the marks the
// server sends. Its methods are safe for concurrent use.
type Client struct {
	peer *wsjson.Peer[ClientEvent]
	p    CallParams
	opts clientOptions

	// Counters, numbered while holding the peer's write lock so they go out in order.
	seq   uint64
	chunk uint64
	sent  uint64 // μ-law bytes sent, for timestamps
	wbuf  []byte // the media message being sent, under the write lock
	sid   string // the streamSid as a JSON string

	// Reader goroutine only: the media fast path.
	scan  wsjson.Scanner
	audio []byte

	received atomic.Uint64 // μ-law bytes received

	rmu        sync.Mutex // recordings
	rec        []byte
	recordings []Recording
}

// clientMsg is a message the client sends, in Twilio's field order.
type clientMsg struct {
	Event          string       `json:"event"`
	Protocol       string       `json:"protocol,omitempty"`
	Version        string       `json:"version,omitempty"`
	SequenceNumber string       `json:"sequenceNumber,omitempty"`
	StreamSid      string       `json:"streamSid,omitempty"`
	Start          *clientStart `json:"start,omitempty"`
	Media          *clientMedia `json:"media,omitempty"`
	DTMF           *clientDTMF  `json:"dtmf,omitempty"`
	Mark           *clientMark  `json:"mark,omitempty"`
	Stop           *clientStop  `json:"stop,omitempty"`
}

type clientStart struct {
	StreamSid        string            `json:"streamSid"`
	AccountSid       string            `json:"accountSid"`
	CallSid          string            `json:"callSid"`
	Tracks           []string          `json:"tracks"`
	CustomParameters map[string]string `json:"customParameters"`
	MediaFormat      clientFormat      `json:"mediaFormat"`
}

type clientFormat struct {
	Encoding   string `json:"encoding"`
	SampleRate int    `json:"sampleRate"`
	Channels   int    `json:"channels"`
}

type clientMedia struct {
	Track     string `json:"track"`
	Chunk     string `json:"chunk"`
	Timestamp string `json:"timestamp"`
	Payload   string `json:"payload"`
}

type clientDTMF struct {
	Track string `json:"track"`
	Digit string `json:"digit"`
}

type clientMark struct {
	Name string `json:"name"`
}

type clientStop struct {
	AccountSid string `json:"accountSid"`
	CallSid    string `json:"callSid"`
}

// serverMsg is a message from the server.
type serverMsg struct {
	Event     string `json:"event"`
	StreamSid string `json:"streamSid"`
	Media     *struct {
		Payload string `json:"payload"`
	} `json:"media"`
	Mark *struct {
		Name string `json:"name"`
	} `json:"mark"`
}

// Dial opens a stream to rawURL (ws://, wss://, or http(s):// meaning the same) and sends
// "connected" and "start" exactly as Twilio does. It returns an error wrapping ErrRejected
// when the server refuses the upgrade.
func Dial(ctx context.Context, rawURL string, p CallParams, opts ...ClientOption) (*Client, error) {
	o := clientOptions{buffer: 256}
	for _, opt := range opts {
		opt(&o)
	}
	u, err := wsjson.DialURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("twilio: dial %q: %w", rawURL, err)
	}
	if p.CallSid == "" {
		p.CallSid = randomSid("CA")
	}
	if p.StreamSid == "" {
		p.StreamSid = randomSid("MZ")
	}
	if p.AccountSid == "" {
		p.AccountSid = randomSid("AC")
	}
	hdr := http.Header{}
	if p.AuthToken != "" {
		signed := o.signedURL
		if signed == "" {
			signed = "wss://" + u.Host + u.EscapedPath()
		}
		hdr.Set("X-Twilio-Signature", Signature(p.AuthToken, signed, nil))
	}
	conn, status, err := wsjson.Dial(ctx, o.dialer, u, hdr)
	if status != 0 {
		return nil, fmt.Errorf("%w: HTTP %d", ErrRejected, status)
	}
	if err != nil {
		return nil, fmt.Errorf("twilio: dial: %w", err)
	}
	sid, _ := json.Marshal(p.StreamSid)
	c := &Client{p: p, opts: o, sid: string(sid)}
	c.peer = wsjson.NewPeer(conn, wsjson.PeerConfig[ClientEvent]{
		Buffer:    o.buffer,
		Realtime:  o.realtime,
		Handle:    c.handle,
		Echo:      c.echo,
		Failed:    func(err error) ClientEvent { return ClientEvent{Kind: "error", Err: err} },
		Closed:    closedEvent,
		ErrClosed: ErrClientClosed,
	})
	params := map[string]string{}
	for k, v := range p.Params {
		params[k] = v
	}
	for k, v := range map[string]string{"from": p.From, "to": p.To, "verstat": p.Verstat} {
		if v != "" {
			params[k] = v
		}
	}
	err = c.send(clientMsg{Event: "connected", Protocol: "Call", Version: "1.0.0"}, false)
	if err == nil {
		err = c.send(clientMsg{Event: "start", Start: &clientStart{
			StreamSid: p.StreamSid, AccountSid: p.AccountSid, CallSid: p.CallSid,
			Tracks: []string{"inbound"}, CustomParameters: params,
			MediaFormat: clientFormat{Encoding: "audio/x-mulaw", SampleRate: media.SampleRate, Channels: 1},
		}}, true)
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("twilio: start: %w", err)
	}
	c.peer.Run()
	return c, nil
}

func closedEvent(code int, reason string, err, _ error) ClientEvent {
	return ClientEvent{Kind: "closed", CloseCode: code, CloseText: reason, Err: err}
}

func randomSid(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Params returns the call's parameters, with generated ids filled in.
func (c *Client) Params() CallParams { return c.p }

// Events returns the client's events; the channel closes after the "closed" event.
func (c *Client) Events() <-chan ClientEvent { return c.peer.Events() }

// send writes one message; seq adds the next sequenceNumber and the streamSid.
func (c *Client) send(m clientMsg, seq bool) error {
	return c.peer.Writes(func(send func([]byte) error) error { return c.sendLocked(send, m, seq) })
}

func (c *Client) sendLocked(send func([]byte) error, m clientMsg, seq bool) error {
	if seq {
		c.seq++
		m.SequenceNumber = strconv.FormatUint(c.seq, 10)
		m.StreamSid = c.p.StreamSid
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return send(b)
}

// SendDTMF sends a "dtmf" message for one key ("0"-"9", "*", "#", "A"-"D").
func (c *Client) SendDTMF(d byte) error {
	if strings.IndexByte("0123456789*#ABCD", d) < 0 {
		return fmt.Errorf("twilio: SendDTMF: not a DTMF key")
	}
	return c.send(clientMsg{Event: "dtmf", DTMF: &clientDTMF{Track: "inbound_track", Digit: string(d)}}, true)
}

// SendAudio sends caller audio (μ-law, 8 kHz) as inbound media messages of 160 bytes (20 ms;
// the last may be shorter), with chunk counting from 1 and timestamp advancing 20 ms per 160
// bytes. It does not pace: call it every 20 ms for real-time audio. It allocates nothing once
// its buffers have grown.
func (c *Client) SendAudio(ulaw []byte) error {
	return c.peer.Writes(func(send func([]byte) error) error {
		for off := 0; off < len(ulaw); off += media.FrameSamples {
			part := ulaw[off:min(off+media.FrameSamples, len(ulaw))]
			c.chunk++
			c.seq++
			c.wbuf = appendMedia(c.wbuf[:0], c.sid, c.seq, c.chunk, c.sent/(media.SampleRate/1000), part)
			if err := send(c.wbuf); err != nil {
				return err
			}
			c.sent += uint64(len(part))
		}
		return nil
	})
}

// appendMedia appends an inbound media message exactly as encoding/json writes clientMsg, field
// for field; sid is the streamSid as a JSON string.
func appendMedia(b []byte, sid string, seq, chunk, timestamp uint64, ulaw []byte) []byte {
	b = append(b, `{"event":"media","sequenceNumber":"`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(append(append(b, `","streamSid":`...), sid...), `,"media":{"track":"inbound","chunk":"`...)
	b = strconv.AppendUint(b, chunk, 10)
	b = append(b, `","timestamp":"`...)
	b = strconv.AppendUint(b, timestamp, 10)
	b = append(b, `","payload":"`...)
	b = base64.StdEncoding.AppendEncode(b, ulaw)
	return append(b, `"}}`...)
}

// Received is how much audio the server has sent, in μ-law bytes (samples).
func (c *Client) Received() uint64 { return c.received.Load() }

// Stop sends "stop", as Twilio does when the caller hangs up, then closes the stream.
func (c *Client) Stop() error {
	err := c.send(clientMsg{Event: "stop", Stop: &clientStop{AccountSid: c.p.AccountSid, CallSid: c.p.CallSid}}, true)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close closes the stream (close code 1000) and waits, up to two seconds, for the server's
// close frame and the client's goroutines. It is idempotent.
func (c *Client) Close() error { return c.peer.Close() }

// Recordings returns the audio received before each mark so far (with WithRecording).
func (c *Client) Recordings() []Recording {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return append([]Recording(nil), c.recordings...)
}

// handle checks and acts on one server message. Twilio accepts only media, mark and clear
// text messages for the stream's streamSid (telephony-protocols §1.4).
func (c *Client) handle(typ int, data []byte) error {
	if typ != websocket.TextMessage {
		return fmt.Errorf("%w: server sent a binary frame", media.ErrProtocol)
	}
	if c.opts.noAudio && !c.opts.record {
		if ok, err := c.fastMedia(data); ok || err != nil {
			return err
		}
	}
	var m serverMsg
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%w: server sent bad JSON: %v", media.ErrProtocol, err)
	}
	if m.StreamSid != c.p.StreamSid {
		return fmt.Errorf("%w: server sent %s for streamSid %q", media.ErrProtocol, m.Event, m.StreamSid)
	}
	switch m.Event {
	case "media":
		if m.Media == nil {
			return fmt.Errorf("%w: media without media object", media.ErrProtocol)
		}
		audio, err := base64.StdEncoding.Strict().DecodeString(m.Media.Payload)
		if err != nil || len(audio) == 0 {
			return fmt.Errorf("%w: media payload is not base64 audio", media.ErrProtocol)
		}
		if c.opts.record {
			c.rmu.Lock()
			c.rec = append(c.rec, audio...)
			c.rmu.Unlock()
		}
		c.received.Add(uint64(len(audio)))
		c.peer.Queued(len(audio))
		if !c.opts.noAudio {
			c.peer.Emit(ClientEvent{Kind: "media", Audio: audio})
		}
	case "mark":
		if m.Mark == nil || m.Mark.Name == "" {
			return fmt.Errorf("%w: mark without a name", media.ErrProtocol)
		}
		name := m.Mark.Name
		var audio []byte
		if c.opts.record {
			c.rmu.Lock()
			audio = c.rec
			c.recordings = append(c.recordings, Recording{Mark: name, Audio: audio})
			c.rec = nil
			c.rmu.Unlock()
		}
		return c.peer.Marked(name, ClientEvent{Kind: "mark", Mark: name, Audio: audio})
	case "clear":
		return c.peer.Cleared(ClientEvent{Kind: "clear"}, func(pending int) {
			if !c.opts.record {
				return
			}
			// Pending marks are the latest marks received, in order: flag their recordings.
			c.rmu.Lock()
			for i := max(len(c.recordings)-pending, 0); i < len(c.recordings); i++ {
				c.recordings[i].Cleared = true
			}
			c.rmu.Unlock()
		})
	default:
		return fmt.Errorf("%w: server sent event %q; Twilio accepts only media, mark and clear", media.ErrProtocol, m.Event)
	}
	return nil
}

// fastMedia handles a media message in exactly the form the server writes,
// {"event":"media","streamSid":"…","media":{"payload":"…"}}, without allocating; ok is false
// for any other message, which handle then reads with encoding/json. The payload is checked as
// handle checks it.
func (c *Client) fastMedia(data []byte) (ok bool, err error) {
	s := &c.scan
	s.Reset(data)
	var payload []byte
	if !s.Consume('{') {
		return false, nil
	}
	for _, want := range [...]string{"event", "streamSid", "media"} {
		if k, err := s.Key(); err != nil || string(k) != want {
			return false, nil
		}
		if want == "media" {
			if !s.Consume('{') {
				return false, nil
			}
			if k, err := s.Key(); err != nil || string(k) != "payload" {
				return false, nil
			}
		}
		v, err := s.Str()
		if err != nil {
			return false, nil
		}
		switch want {
		case "event":
			if string(v) != "media" {
				return false, nil
			}
		case "streamSid":
			if string(v) != c.p.StreamSid {
				return false, nil
			}
		default:
			payload = v
		}
		if want != "media" && !s.Consume(',') {
			return false, nil
		}
	}
	if !s.Consume('}') || !s.Consume('}') || !s.End() {
		return false, nil
	}
	n := base64.StdEncoding.DecodedLen(len(payload))
	if cap(c.audio) < n {
		c.audio = make([]byte, n)
	}
	m, err := base64.StdEncoding.Strict().Decode(c.audio[:n], payload)
	if err != nil || m == 0 {
		return true, fmt.Errorf("%w: media payload is not base64 audio", media.ErrProtocol)
	}
	c.received.Add(uint64(m))
	c.peer.Queued(m)
	return true, nil
}

// echo sends a mark back and reports it played.
func (c *Client) echo(name string, cleared bool) error {
	if err := c.send(clientMsg{Event: "mark", Mark: &clientMark{Name: name}}, true); err != nil {
		return err
	}
	c.peer.Emit(ClientEvent{Kind: "played", Mark: name, Cleared: cleared})
	return nil
}
