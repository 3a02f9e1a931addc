package webrtc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/dtmf"
)

// ClientOption configures a Client.
type ClientOption func(*clientOptions)

type clientOptions struct {
	params     map[string]string
	codecs     []string
	eventPT    uint8
	continuous bool
	buffer     int
	httpClient *http.Client
	log        *zap.Logger
	tone, gap  time.Duration
}

// WithParams sets the call's parameters (request, lang, account), sent as query parameters of
// the offer.
func WithParams(p map[string]string) ClientOption { return func(o *clientOptions) { o.params = p } }

// WithCodecs sets the G.711 codecs offered, in order of preference: "PCMU", "PCMA" or both
// (the default, PCMU first, as browsers offer them).
func WithCodecs(names ...string) ClientOption { return func(o *clientOptions) { o.codecs = names } }

// WithEventPayloadType sets the payload type offered for telephone-event/8000 (default 126,
// Chrome's).
func WithEventPayloadType(pt uint8) ClientOption { return func(o *clientOptions) { o.eventPT = pt } }

// WithContinuousAudio chooses whether the client sends a frame every 20 ms even when it has no
// audio queued (silence; the default, as browsers do) or only while it has audio or digits to
// send (a peer doing discontinuous transmission, or one that went silent).
func WithContinuousAudio(on bool) ClientOption { return func(o *clientOptions) { o.continuous = on } }

// WithEventBuffer sets the capacity of the Events channel (default 256). The client stops
// reading audio while the channel is full.
func WithEventBuffer(n int) ClientOption { return func(o *clientOptions) { o.buffer = n } }

// WithHTTPClient sets the HTTP client for the offer and the hang-up (default: 10 s timeout).
func WithHTTPClient(c *http.Client) ClientOption { return func(o *clientOptions) { o.httpClient = c } }

// WithLogger sets the logger for pion's messages (default: none).
func WithLogger(log *zap.Logger) ClientOption { return func(o *clientOptions) { o.log = log } }

// WithDigitTiming sets how long each key press lasts and the pause after it (default 100 ms
// and 70 ms, what browsers use for insertDTMF).
func WithDigitTiming(tone, gap time.Duration) ClientOption {
	return func(o *clientOptions) { o.tone, o.gap = tone, gap }
}

// Client plays a browser's side of a WebRTC call, for `callproof call --platform webrtc`,
// `callproof load` and tests: it offers PCMU/PCMA and telephone-event, sends caller audio as one
// 20 ms frame per tick (silence when none is queued) and digits as RFC 4733 events on the
// negotiated payload type, sharing the audio's SSRC and clock as a browser's RTCDTMFSender does,
// and reports the audio the server sends. Its methods are safe for concurrent use.
type Client struct {
	opts     clientOptions
	pc       *webrtc.PeerConnection
	track    *g711Track
	httpc    *http.Client
	location string
	callID   string
	events   chan media.SimEvent

	mu     sync.Mutex
	audio  []int16 // caller audio not yet sent
	digits []byte  // key presses not yet sent
	reason string  // why the call ended

	connected   chan struct{}
	connOnce    sync.Once
	endCh       chan struct{} // closed when the call ends
	endOnce     sync.Once
	done        chan struct{} // closed by Close: event sends stop blocking
	doneOnce    sync.Once
	readersMu   sync.Mutex
	readersDone bool
	readers     sync.WaitGroup
	senderDone  chan struct{}
	finished    chan struct{} // the supervisor has closed events
}

// Dial offers a call to the server's WebRTC endpoint at rawURL (http:// or https://; a URL
// with no path means OfferPath), waits for the answer and for the connection to come up. It
// returns an error wrapping ErrRejected when the server refused the offer.
func Dial(ctx context.Context, rawURL string, opts ...ClientOption) (*Client, error) {
	o := clientOptions{codecs: []string{"PCMU", "PCMA"}, eventPT: 126, continuous: true, buffer: 256,
		tone: 100 * time.Millisecond, gap: 70 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	if o.buffer <= 0 {
		o.buffer = 256
	}
	if o.log == nil {
		o.log = zap.NewNop()
	}
	if o.httpClient == nil {
		o.httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	u, err := offerURL(rawURL, o.params)
	if err != nil {
		return nil, err
	}
	api, err := clientAPI(&o)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("webrtc: new peer connection: %w", err)
	}
	c := &Client{
		opts:       o,
		pc:         pc,
		track:      newG711Track("caller-audio", "caller"),
		httpc:      o.httpClient,
		events:     make(chan media.SimEvent, o.buffer),
		connected:  make(chan struct{}),
		endCh:      make(chan struct{}),
		done:       make(chan struct{}),
		senderDone: make(chan struct{}),
		finished:   make(chan struct{}),
	}
	pc.OnTrack(c.onTrack)
	pc.OnConnectionStateChange(c.onState)
	if err := c.offer(ctx, u); err != nil {
		c.end("dial failed")
		_ = pc.GracefulClose()
		c.closeReaders()
		return nil, err
	}
	go c.sendLoop()
	go c.supervise()
	return c, nil
}

// offer runs the offer/answer exchange and waits for the connection.
func (c *Client) offer(ctx context.Context, u *url.URL) error {
	if _, err := c.pc.AddTransceiverFromTrack(c.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		return fmt.Errorf("webrtc: add track: %w", err)
	}
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("webrtc: create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("webrtc: set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(c.pc.LocalDescription().SDP))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := c.httpc.Do(req)
	if err != nil {
		return fmt.Errorf("webrtc: offer: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, DefaultMaxOfferBytes))
	if err != nil {
		return fmt.Errorf("webrtc: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("%w: %s: %s", ErrRejected, resp.Status, strings.TrimSpace(string(bytes.ToValidUTF8(body[:min(len(body), 200)], nil))))
	}
	loc, err := u.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return fmt.Errorf("%w: answer has no usable Location", ErrRejected)
	}
	loc.RawQuery = ""
	c.location, c.callID = loc.String(), resp.Header.Get("Callproof-Call-Id")
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return fmt.Errorf("webrtc: answer: %w", err)
	}
	select {
	case <-c.connected:
		return nil
	case <-c.endCh:
		return fmt.Errorf("webrtc: connection failed: %s", c.endReason())
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// offerURL resolves rawURL to the offer endpoint with params in its query.
func offerURL(rawURL string, params map[string]string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("webrtc: server url: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
	default:
		return nil, fmt.Errorf("webrtc: server url %q: want http:// or https://", rawURL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = OfferPath
	}
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u, nil
}

// clientAPI builds the client's pion API: the offered codecs in order, telephone-event on the
// chosen payload type, loopback candidates included (the client is a test and load tool).
func clientAPI(o *clientOptions) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	for _, name := range o.codecs {
		var p webrtc.RTPCodecParameters
		switch strings.ToUpper(name) {
		case "PCMU":
			p = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: clockRate, Channels: 1}, PayloadType: 0}
		case "PCMA":
			p = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: clockRate, Channels: 1}, PayloadType: 8}
		default:
			return nil, fmt.Errorf("webrtc: codec %q: want PCMU or PCMA", name)
		}
		if err := m.RegisterCodec(p, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	if o.eventPT < 96 || o.eventPT > 127 {
		return nil, fmt.Errorf("webrtc: telephone-event payload type %d: want a dynamic type, 96-127", o.eventPT)
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mimeTelephoneEvent, ClockRate: clockRate, Channels: 1, SDPFmtpLine: "0-15"},
		PayloadType:        webrtc.PayloadType(o.eventPT),
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	s := webrtc.SettingEngine{LoggerFactory: pionLogs{z: o.log.Named("pion")}}
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	s.SetIncludeLoopbackCandidate(true)
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{})), nil
}

// CallID returns the server's id for the call (Callproof-Call-Id, "WR…").
func (c *Client) CallID() string { return c.callID }

// Location returns the URL of the call's resource (DELETE hangs up).
func (c *Client) Location() string { return c.location }

// Events returns what the client observed: SimAudio for each audio frame the server sent (its
// 8 kHz PCM, 160 samples; the server sends frames only while a prompt plays), then one
// SimClosed (Reason "hangup" when the server ended the call, "ice failed" or "ice disconnected"
// when the connection was lost, "closed" after Close), after which the channel closes.
func (c *Client) Events() <-chan media.SimEvent { return c.events }

// SendAudio queues caller audio (8 kHz PCM); it goes out with the 20 ms stream, the last frame
// padded with silence.
func (c *Client) SendAudio(pcm []int16) error {
	if c.isEnded() {
		return ErrClientClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.audio = append(c.audio, pcm...)
	if r := len(c.audio) % media.FrameSamples; r != 0 {
		c.audio = append(c.audio, make([]int16, media.FrameSamples-r)...)
	}
	return nil
}

// SendDTMF queues one key press (0-9, *, #, A-D), sent as RFC 4733 telephone-events after the
// key presses queued before it. It returns an error wrapping dtmf.ErrDigit for another
// character.
func (c *Client) SendDTMF(d byte) error {
	if _, ok := dtmf.EventCode(d); !ok {
		return fmt.Errorf("webrtc: send dtmf: %w", dtmf.ErrDigit)
	}
	if c.isEnded() {
		return ErrClientClosed
	}
	c.mu.Lock()
	c.digits = append(c.digits, d)
	c.mu.Unlock()
	return nil
}

// Hangup hangs up as a browser does: DELETE on the call's resource, then Close.
func (c *Client) Hangup(ctx context.Context) error {
	var err error
	if !c.isEnded() {
		var req *http.Request
		req, err = http.NewRequestWithContext(ctx, http.MethodDelete, c.location, nil)
		if err == nil {
			var resp *http.Response
			if resp, err = c.httpc.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("webrtc: hangup: %s", resp.Status)
				}
			}
		}
	}
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close ends the call from the client's side (DTLS close_notify, which the server takes as the
// caller hanging up) and waits for the client's goroutines. It is idempotent.
func (c *Client) Close() error {
	c.doneOnce.Do(func() { close(c.done) })
	c.end("closed")
	<-c.finished
	return nil
}

func (c *Client) isEnded() bool {
	select {
	case <-c.endCh:
		return true
	default:
		return false
	}
}

func (c *Client) end(reason string) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.reason = reason
		c.mu.Unlock()
		close(c.endCh)
	})
}

func (c *Client) endReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

func (c *Client) onState(s webrtc.PeerConnectionState) {
	switch s {
	case webrtc.PeerConnectionStateConnected:
		c.connOnce.Do(func() { close(c.connected) })
	case webrtc.PeerConnectionStateFailed:
		c.end("ice failed")
	case webrtc.PeerConnectionStateDisconnected:
		c.end("ice disconnected")
	case webrtc.PeerConnectionStateClosed:
		c.end("hangup")
	}
}

// supervise tears the call down once it ends and reports SimClosed last.
func (c *Client) supervise() {
	defer close(c.finished)
	defer close(c.events)
	<-c.endCh
	_ = c.pc.GracefulClose()
	c.closeReaders()
	<-c.senderDone
	c.emit(media.SimEvent{Kind: media.SimClosed, Reason: c.endReason()})
}

// emit delivers an event, blocking while the channel is full until Close.
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

func (c *Client) closeReaders() {
	c.readersMu.Lock()
	c.readersDone = true
	c.readersMu.Unlock()
	c.readers.Wait()
}

// onTrack reports the server's audio frames.
func (c *Client) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	c.readersMu.Lock()
	if c.readersDone {
		c.readersMu.Unlock()
		return
	}
	c.readers.Add(1)
	c.readersMu.Unlock()
	defer c.readers.Done()
	kinds := kindsOf(recv.GetParameters().Codecs)
	buf := make([]byte, readBufSize)
	var pkt rtp.Packet
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			if errors.Is(err, io.EOF) || c.isEnded() {
				return
			}
			continue
		}
		if pkt.Unmarshal(buf[:n]) != nil || len(pkt.Payload) == 0 {
			continue
		}
		var pcm []int16
		switch kinds[pkt.PayloadType&0x7F] {
		case kindPCMU:
			pcm = media.DecodeUlaw(make([]int16, len(pkt.Payload)), pkt.Payload)
		case kindPCMA:
			pcm = media.DecodeAlaw(make([]int16, len(pkt.Payload)), pkt.Payload)
		default:
			continue
		}
		c.emit(media.SimEvent{Kind: media.SimAudio, Audio: pcm})
	}
}

// sendLoop is the client's 20 ms clock: each tick sends the next telephone-event packet of the
// key press in progress, or the next queued audio frame, or silence (with continuous audio).
// All packets share one SSRC and one RTP clock; a key press's packets carry the timestamp of
// its start (RFC 4733 §2.5.1), audio carries the time of its frame.
func (c *Client) sendLoop() {
	defer close(c.senderDone)
	t := time.NewTicker(media.FrameDuration)
	defer t.Stop()
	w := newRTPWriter(c.track, randomUint16())
	var (
		ts      = randomUint32()
		press   []dtmf.EventPacket
		next    int    // index of the next packet of press
		pressTS uint32 // timestamp of the press's start
		gap     int    // ticks of pause still due after a press
		marker  = true // the next audio frame starts a talkspurt
		frame   [media.FrameSamples]byte
		payload []byte
		sender  = dtmf.Sender{Interval: media.FrameDuration}
	)
	for {
		select {
		case <-c.endCh:
			return
		case <-t.C:
		}
		b, bound := c.track.binding()
		if !bound {
			ts += media.FrameSamples
			continue
		}
		if next == len(press) && gap == 0 {
			if d, ok := c.nextDigit(); ok {
				press, _ = sender.Packets(press[:0], d, c.opts.tone)
				next, pressTS = 0, ts
			}
		}
		var err error
		switch {
		case next < len(press) && b.hasEv:
			p := press[next]
			next++
			if next == len(press) {
				gap = int((c.opts.gap + media.FrameDuration - 1) / media.FrameDuration)
			}
			payload = p.Event.AppendTo(frame[:0])
			err = w.write(&b, b.evPT, pressTS+p.Timestamp, p.Marker, payload)
			marker = true
		default:
			next = len(press) // no telephone-event negotiated: the press is dropped
			if gap > 0 {
				gap--
			}
			pcm, ok := c.nextFrame()
			if !ok && !c.opts.continuous {
				marker = true
				break
			}
			for i := range frame {
				var s int16
				if ok {
					s = pcm[i]
				}
				if b.audio == kindPCMA {
					frame[i] = media.PCMToAlaw(s)
				} else {
					frame[i] = media.PCMToUlaw(s)
				}
			}
			err = w.write(&b, b.pt, ts, marker, frame[:])
			marker = false
		}
		if err != nil && !errors.Is(err, io.ErrClosedPipe) && !errors.Is(err, io.EOF) {
			c.end("write failed")
			return
		}
		ts += media.FrameSamples
	}
}

func (c *Client) nextDigit() (byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.digits) == 0 {
		return 0, false
	}
	d := c.digits[0]
	c.digits = c.digits[1:]
	return d, true
}

// nextFrame takes the next queued 20 ms of caller audio. SendAudio only appends past the queue's
// start, so the frame returned is not overwritten.
func (c *Client) nextFrame() ([]int16, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.audio) < media.FrameSamples {
		return nil, false
	}
	f := c.audio[:media.FrameSamples:media.FrameSamples]
	c.audio = c.audio[media.FrameSamples:]
	return f, true
}
