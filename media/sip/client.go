package sip

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/dtmf"
)

// Client plays a SIP trunk's caller for `callproof call --platform sip`, load tests and
// integration tests: it places one call over UDP (INVITE offering PCMU and telephone-event/8000
// as payload type 101), streams caller audio and RFC 4733 digits on a 20 ms clock (silence in
// between, as a phone does), reports the audio the server sends, and plays the transferee's
// part when the server sends REFER (202, then NOTIFY with "SIP/2.0 200 OK"). Its methods are
// safe for concurrent use.
type Client struct {
	opts     clientOptions
	log      *zap.Logger
	logGate  *logGate
	ua       *sipgo.UserAgent
	pc       *quietConn
	rtpConn  *net.UDPConn
	dlg      *sipgo.DialogClientSession
	callID   string
	tePT     int
	remote   netip.AddrPort
	prompts  *media.PromptIndex
	events   chan media.SimEvent
	serveErr chan error

	mu       sync.Mutex
	queue    []outItem
	token    string
	referTo  string
	reason   string
	finished bool

	stop       chan struct{} // closed when the call is over: the sender stops, the reader ends
	done       chan struct{} // closed by Close: event sends stop blocking
	closeOnce  sync.Once
	wg         sync.WaitGroup // sender, reader, NOTIFY sender
	serveWG    sync.WaitGroup
	readerDone chan struct{}
}

// outItem is one 20 ms slot of what the client sends: a G.711 frame or an RFC 4733 packet.
type outItem struct {
	frame []byte // μ-law, 160 bytes; nil for an event packet
	ev    dtmf.EventPacket
	evNew bool // the first packet of a key press: its timestamp is taken from the clock
}

// ClientOption configures a Client.
type ClientOption func(*clientOptions)

type clientOptions struct {
	from, to, verstat string
	headers           [][2]string
	user, password    string
	tokenHeader       string
	buffer            int
	log               *zap.Logger
	prompts           []*media.Clip
	keyPress          time.Duration
}

// WithFrom sets the caller's number (the From user part). Default "+15555550100".
func WithFrom(number string) ClientOption { return func(o *clientOptions) { o.from = number } }

// WithTo sets the dialled number (the Request-URI user part). Default "callproof".
func WithTo(user string) ClientOption { return func(o *clientOptions) { o.to = user } }

// WithVerstat adds a P-Asserted-Identity for the caller's number with this verstat parameter,
// as a STIR/SHAKEN terminating network does.
func WithVerstat(v string) ClientOption { return func(o *clientOptions) { o.verstat = v } }

// WithHeader adds a header to the INVITE, e.g. WithHeader(DefaultRequestHeader, "delete").
func WithHeader(name, value string) ClientOption {
	return func(o *clientOptions) { o.headers = append(o.headers, [2]string{name, value}) }
}

// WithAuth answers a digest challenge with these credentials.
func WithAuth(user, password string) ClientOption {
	return func(o *clientOptions) { o.user, o.password = user, password }
}

// WithTokenHeader names the REFER header whose value Token returns. Default
// "X-Callproof-Token".
func WithTokenHeader(name string) ClientOption {
	return func(o *clientOptions) { o.tokenHeader = name }
}

// WithEventBuffer sets the capacity of the Events channel (default 256). The client stops
// reading RTP while the channel is full.
func WithEventBuffer(n int) ClientOption { return func(o *clientOptions) { o.buffer = n } }

// WithClientLogger sets the logger (default none).
func WithClientLogger(log *zap.Logger) ClientOption { return func(o *clientOptions) { o.log = log } }

// WithPrompts makes the client recognise these clips in the server's audio and report each as a
// SimMark named after the clip's ID once its last frame has arrived. The server marks the first
// packet of every clip (the RTP marker bit, RFC 3551 §4.1) and sends PCMU, whose decoding the
// index is built on.
func WithPrompts(clips []*media.Clip) ClientOption {
	return func(o *clientOptions) { o.prompts = clips }
}

// WithKeyPress sets how long each key press sent with SendDTMF lasts. Default 100 ms.
func WithKeyPress(d time.Duration) ClientOption { return func(o *clientOptions) { o.keyPress = d } }

// Dial places a call to the SIP server at addr (host:port, UDP), answers a digest challenge
// when WithAuth was given, and returns once the call is up (200 OK and ACK). A final status
// other than 2xx returns an error wrapping ErrRejected.
func Dial(ctx context.Context, addr string, opts ...ClientOption) (*Client, error) {
	o := clientOptions{from: "+15555550100", to: "callproof", tokenHeader: DefaultTokenHeader, buffer: 256,
		keyPress: 100 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	if o.buffer <= 0 {
		o.buffer = 256
	}
	log := o.log
	if log == nil {
		log = zap.NewNop()
	}
	server, err := netip.ParseAddrPort(addr)
	if err != nil {
		ua, rerr := net.ResolveUDPAddr("udp", addr)
		if rerr != nil {
			return nil, fmt.Errorf("sip: dial %q: %w", addr, rerr)
		}
		server = ua.AddrPort()
	}
	server = netip.AddrPortFrom(server.Addr().Unmap(), server.Port())
	local := routeTo(server.Addr())

	c := &Client{opts: o, log: log, tePT: -1, events: make(chan media.SimEvent, o.buffer),
		serveErr: make(chan error, 1), stop: make(chan struct{}), done: make(chan struct{}),
		readerDone: make(chan struct{})}
	if len(o.prompts) > 0 {
		c.prompts = media.NewPromptIndex(roundTrip(o.prompts))
	}
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(local, 0).String())
	if err != nil {
		return nil, fmt.Errorf("sip: dial: %w", err)
	}
	c.pc = &quietConn{PacketConn: pc}
	if c.rtpConn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0))); err != nil {
		_ = c.pc.Close()
		return nil, fmt.Errorf("sip: dial: %w", err)
	}
	if err := c.invite(ctx, server, local); err != nil {
		c.teardown()
		return nil, err
	}
	c.wg.Add(2)
	go c.sendLoop()
	go c.readLoop()
	return c, nil
}

// routeTo is the local address the system uses toward dst.
func routeTo(dst netip.Addr) netip.Addr {
	if dst.IsLoopback() {
		return dst
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	if err == nil {
		defer conn.Close()
		return conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	}
	return netip.IPv4Unspecified()
}

// roundTrip returns the clips as they sound after PCMU: what the client decodes.
func roundTrip(clips []*media.Clip) []*media.Clip {
	out := make([]*media.Clip, 0, len(clips))
	for _, c := range clips {
		pcm := media.DecodeUlaw(make([]int16, len(c.Ulaw())), c.Ulaw())
		if rc, err := media.NewClip(c.ID(), pcm); err == nil {
			out = append(out, rc)
		}
	}
	return out
}

func (c *Client) invite(ctx context.Context, server netip.AddrPort, local netip.Addr) error {
	sipAddr := c.pc.LocalAddr().(*net.UDPAddr).AddrPort()
	sl, gate := newSlog(c.log)
	c.logGate = gate
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("callproof-caller"),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sl)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sl)))
	if err != nil {
		return fmt.Errorf("sip: dial: %w", err)
	}
	c.ua = ua
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(sl))
	if err != nil {
		return fmt.Errorf("sip: dial: %w", err)
	}
	cl, err := sipgo.NewClient(ua, sipgo.WithClientLogger(sl), sipgo.WithClientHostname(local.String()),
		sipgo.WithClientPort(int(sipAddr.Port())), sipgo.WithClientConnectionAddr(sipAddr.String()))
	if err != nil {
		return fmt.Errorf("sip: dial: %w", err)
	}
	srv.OnBye(c.onBye)
	srv.OnRefer(c.onRefer)
	srv.OnInfo(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	c.serveWG.Go(func() { c.serveErr <- srv.ServeUDP(c.pc) })
	// Requests go out from the listening socket, so that responses and the server's requests
	// come back to it; it is in the transport's pool once ServeUDP has started.
	for i := 0; ua.TransportLayer().Pool("udp").Size() == 0; i++ {
		if i > 1000 {
			return errors.New("sip: dial: transport did not start")
		}
		time.Sleep(time.Millisecond)
	}

	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "caller", Host: local.String(), Port: int(sipAddr.Port())}}
	recipient := sip.Uri{Scheme: "sip", User: c.opts.to, Host: server.Addr().String(), Port: int(server.Port())}
	req := sip.NewRequest(sip.INVITE, recipient)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: c.opts.from, Host: local.String()}}
	from.Params = sip.NewParams()
	from.Params.Add("tag", newTag())
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: c.opts.to, Host: server.Addr().String()}})
	if c.opts.verstat != "" {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity",
			"<sip:"+c.opts.from+";verstat="+c.opts.verstat+"@"+local.String()+";user=phone>"))
	}
	for _, h := range c.opts.headers {
		req.AppendHeader(sip.NewHeader(h[0], h[1]))
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	rtpPort := c.rtpConn.LocalAddr().(*net.UDPAddr).Port
	offer, err := clientOffer(local, rtpPort)
	if err != nil {
		return err
	}
	req.SetBody(offer)
	dua := &sipgo.DialogUA{Client: cl, ContactHDR: contact}
	dlg, err := dua.WriteInvite(ctx, req)
	if err != nil {
		return fmt.Errorf("sip: dial: %w", err)
	}
	c.dlg = dlg
	c.callID = req.CallID().Value()
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{Username: c.opts.user, Password: c.opts.password}); err != nil {
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			return fmt.Errorf("%w: %d %s", ErrRejected, de.Res.StatusCode, de.Res.Reason)
		}
		return fmt.Errorf("sip: dial: %w", err)
	}
	if err := dlg.Ack(ctx); err != nil {
		return fmt.Errorf("sip: dial: ack: %w", err)
	}
	ct := ""
	if h := dlg.InviteResponse.ContentType(); h != nil {
		ct = h.Value()
	}
	body, err := sdpBody(ct, dlg.InviteResponse.Body())
	if err == nil && body == nil {
		err = fmt.Errorf("%w: the 200 OK has no answer", ErrSDP)
	}
	var sess *session
	if err == nil {
		sess, err = negotiate(body)
	}
	if err == nil && sess.alaw {
		err = fmt.Errorf("%w: answered PCMA to a PCMU offer", ErrSDP)
	}
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = dlg.Bye(ctx)
		return err
	}
	c.tePT, c.remote = sess.tePT, sess.remote
	return nil
}

// clientOffer is the caller's SDP: PCMU and telephone-event/8000 as payload type 101.
func clientOffer(ip netip.Addr, port int) ([]byte, error) {
	d := baseSDP(newOrigin(), localMedia{ip: ip, port: port})
	d.SessionName = "callproof-caller"
	d.MediaDescriptions = append(d.MediaDescriptions, audioLine(port, ptPCMU, "PCMU", 101, dirSendRecv))
	return d.Marshal()
}

// peer is the server's remote target: its Contact, else the Request-URI.
func (c *Client) peer() sip.Uri {
	if h := c.dlg.InviteResponse.Contact(); h != nil {
		return *h.Address.Clone()
	}
	return *c.dlg.InviteRequest.Recipient.Clone()
}

// CallID is the call's SIP Call-ID (the server's media.Start.CallID).
func (c *Client) CallID() string { return c.callID }

// Events returns what the client observed: SimAudio for each packet of audio the server sent
// (8 kHz PCM, normally one 20 ms frame), SimMark for each clip recognised (WithPrompts), then
// one SimClosed whose Reason is "transferred" (the server sent REFER, then BYE), "bye" (the
// server hung up) or "closed" (Close hung up); then the channel closes.
func (c *Client) Events() <-chan media.SimEvent { return c.events }

// Token returns the value of the token header of the server's REFER ("" before one arrived).
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// ReferTo returns the Refer-To of the server's REFER ("" before one arrived).
func (c *Client) ReferTo() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.referTo
}

// SendDTMF sends one key press (0-9, *, #, A-D) as RFC 4733 telephone-events after whatever
// is queued: an event of WithKeyPress's length in 20 ms updates, the end packet three times,
// then 60 ms of silence.
func (c *Client) SendDTMF(d byte) error {
	if c.tePT < 0 {
		return fmt.Errorf("%w: the server did not accept telephone-event", ErrSDP)
	}
	pkts, err := dtmf.Sender{}.Packets(nil, d, c.opts.keyPress)
	if err != nil {
		return fmt.Errorf("sip: SendDTMF: %w", err)
	}
	items := make([]outItem, 0, len(pkts)+3)
	for i, p := range pkts {
		items = append(items, outItem{ev: p, evNew: i == 0})
	}
	for i := 0; i < 3; i++ {
		items = append(items, outItem{frame: silenceFrame[:]})
	}
	return c.enqueue(items)
}

// SendDTMFInfo sends one key press as SIP INFO with an application/dtmf-relay body and waits
// for the response.
func (c *Client) SendDTMFInfo(ctx context.Context, d byte) error {
	if _, ok := dtmf.EventCode(d); !ok {
		return fmt.Errorf("sip: SendDTMFInfo: %w", dtmf.ErrDigit)
	}
	req := sip.NewRequest(sip.INFO, c.peer())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
	req.SetBody([]byte("Signal=" + string(d) + "\r\nDuration=" + strconv.Itoa(int(c.opts.keyPress/time.Millisecond)) + "\r\n"))
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("sip: SendDTMFInfo: %w", err)
	}
	if res.StatusCode != sip.StatusOK {
		return fmt.Errorf("%w: INFO answered %d", ErrRejected, res.StatusCode)
	}
	return nil
}

var silenceFrame = func() (f [media.FrameSamples]byte) {
	for i := range f {
		f[i] = media.UlawSilence
	}
	return f
}()

// SendAudio sends caller audio (8 kHz PCM) as PCMU, 20 ms per tick after whatever is queued,
// the last frame padded with silence.
func (c *Client) SendAudio(pcm []int16) error {
	items := make([]outItem, 0, (len(pcm)+media.FrameSamples-1)/media.FrameSamples)
	for off := 0; off < len(pcm); off += media.FrameSamples {
		f := make([]byte, media.FrameSamples)
		copy(f, silenceFrame[:])
		media.EncodeUlaw(f, pcm[off:min(off+media.FrameSamples, len(pcm))])
		items = append(items, outItem{frame: f})
	}
	return c.enqueue(items)
}

func (c *Client) enqueue(items []outItem) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return ErrClientClosed
	}
	c.queue = append(c.queue, items...)
	return nil
}

// sendLoop sends one packet per 20 ms tick of a deadline clock: the next queued item, else
// silence.
func (c *Client) sendLoop() {
	defer c.wg.Done()
	var b [4]byte
	_, _ = rand.Read(b[:])
	hdr := rtp.Header{Version: 2, PayloadType: ptPCMU, SSRC: binary.BigEndian.Uint32(b[:]), Marker: true}
	var evBuf [dtmf.EventLen]byte
	buf := make([]byte, rtpHeader+media.FrameSamples)
	var evTS uint32
	anchor := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for n := int64(1); ; n++ {
		select {
		case <-c.stop:
			return
		case <-timer.C:
		}
		c.mu.Lock()
		item := outItem{frame: silenceFrame[:]}
		if len(c.queue) > 0 {
			item = c.queue[0]
			c.queue[0] = outItem{}
			c.queue = c.queue[1:]
		}
		c.mu.Unlock()
		h := hdr
		var payload []byte
		if item.frame != nil {
			payload = item.frame
		} else {
			if item.evNew {
				evTS = hdr.Timestamp
			}
			h.PayloadType, h.Timestamp, h.Marker = uint8(c.tePT), evTS+item.ev.Timestamp, item.ev.Marker
			payload = item.ev.Event.AppendTo(evBuf[:0])
		}
		if k, err := h.MarshalTo(buf); err == nil {
			k += copy(buf[k:], payload)
			if _, err := c.rtpConn.WriteToUDPAddrPort(buf[:k], c.remote); err != nil && !errors.Is(err, net.ErrClosed) {
				c.log.Debug("sip client: rtp send", zap.Error(err))
			}
		}
		hdr.Marker = false
		hdr.SequenceNumber++
		hdr.Timestamp += media.FrameSamples
		timer.Reset(time.Until(anchor.Add(time.Duration(n) * media.FrameDuration)))
	}
}

// readLoop reports the server's audio until the call is over, then the SimClosed event.
func (c *Client) readLoop() {
	defer c.wg.Done()
	defer close(c.readerDone)
	defer close(c.events)
	buf := make([]byte, maxDatagram)
	var pkt rtp.Packet
	var head []int16
	var cur *media.Clip
	left := 0
	for {
		n, _, err := c.rtpConn.ReadFromUDPAddrPort(buf)
		if err != nil {
			c.mu.Lock()
			reason := c.reason
			c.mu.Unlock()
			if reason == "" {
				reason = "closed"
			}
			c.emit(media.SimEvent{Kind: media.SimClosed, Reason: reason})
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil || pkt.PayloadType != ptPCMU {
			continue
		}
		pcm := media.DecodeUlaw(make([]int16, len(pkt.Payload)), pkt.Payload)
		c.emit(media.SimEvent{Kind: media.SimAudio, Audio: pcm})
		if c.prompts == nil {
			continue
		}
		switch {
		case pkt.Marker:
			head, cur = append(head[:0], pcm...), nil
		case cur != nil:
			if left -= len(pcm); left <= 0 {
				c.emit(media.SimEvent{Kind: media.SimMark, Mark: cur.ID()})
				cur = nil
			}
			continue
		case len(head) > 0:
			head = append(head, pcm...)
		}
		if len(head) >= 2*media.FrameSamples {
			if clip, ok := c.prompts.Match(head[:2*media.FrameSamples]); ok {
				cur, left = clip, clip.Frames()*media.FrameSamples-len(head)
				if left <= 0 {
					c.emit(media.SimEvent{Kind: media.SimMark, Mark: clip.ID()})
					cur = nil
				}
			}
			head = head[:0]
		}
	}
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

// finish ends the media once: the sender stops and the reader reports SimClosed with reason.
func (c *Client) finish(reason string) {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	c.finished, c.reason = true, reason
	c.queue = nil
	c.mu.Unlock()
	close(c.stop)
	_ = c.rtpConn.Close()
}

func (c *Client) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if req.CallID() == nil || req.CallID().Value() != c.callID {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	_ = c.dlg.ReadBye(req, tx)
	reason := "bye"
	if c.ReferTo() != "" {
		reason = "transferred"
	}
	c.finish(reason)
}

// onRefer accepts the server's transfer and reports it done at once (the simulated caller
// does not place the new call).
func (c *Client) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	if req.CallID() == nil || req.CallID().Value() != c.callID {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	rt := req.GetHeader("Refer-To")
	if rt == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Missing Refer-To", nil))
		return
	}
	c.mu.Lock()
	c.referTo = rt.Value()
	if h := req.GetHeader(c.opts.tokenHeader); h != nil {
		c.token = strings.TrimSpace(h.Value())
	}
	finished := c.finished
	c.mu.Unlock()
	_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusAccepted, "Accepted", nil))
	if finished {
		return
	}
	c.wg.Go(func() {
		notify := sip.NewRequest(sip.NOTIFY, c.peer())
		notify.AppendHeader(sip.NewHeader("Event", "refer"))
		notify.AppendHeader(sip.NewHeader("Subscription-State", "terminated;reason=noresource"))
		notify.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
		notify.SetBody([]byte("SIP/2.0 200 OK\r\n"))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		go func() {
			select {
			case <-c.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		if _, err := c.dlg.Do(ctx, notify); err != nil {
			c.log.Debug("sip client: notify", zap.Error(err))
		}
	})
}

// Close hangs up (BYE) if the call is still up, stops the media and the SIP stack, and waits
// for the client's goroutines. It is idempotent.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.mu.Lock()
		up := !c.finished
		c.mu.Unlock()
		if up {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err = c.dlg.Bye(ctx)
			cancel()
			c.finish("closed")
		}
		// Give the reader a moment to hand over its last events, then stop waiting for the
		// consumer.
		t := time.NewTimer(2 * time.Second)
		select {
		case <-c.readerDone:
		case <-t.C:
		}
		t.Stop()
		close(c.done)
		c.wg.Wait()
		c.teardown()
	})
	return err
}

// teardown closes the SIP stack and the sockets and waits for the SIP listener.
func (c *Client) teardown() {
	c.pc.quiet.Store(true)
	if c.ua != nil {
		time.Sleep(settle)
		_ = c.ua.Close()
	}
	_ = c.pc.Close()
	_ = c.rtpConn.Close()
	c.serveWG.Wait()
	if c.ua != nil {
		_ = c.ua.TransportLayer().Close()
	}
	if c.logGate != nil {
		c.logGate.close()
	}
}
