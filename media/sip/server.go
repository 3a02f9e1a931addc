package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/dtmf"
)

// Server is the SIP user agent server: it answers INVITEs from trunks and runs each call as a
// Leg. One Server serves one pair of listeners (UDP and TCP on the same address).
type Server struct {
	cfg      Config
	serve    func(ctx context.Context, leg media.Leg)
	log      *zap.Logger
	slog     *slog.Logger
	logGate  *logGate
	auth     *digestAuth // nil: no Users
	transfer *sip.Uri    // nil: BYE on completion
	parser   *sip.Parser // for the UDP pre-check
	ports    portPool
	listenIP netip.Addr         // zero when Listen's host is unspecified
	invites  *media.AddrLimiter // nil: no per-address limit

	base       context.Context // signalling work outlives a call's context, not the server
	baseCancel context.CancelFunc

	mu       sync.Mutex
	started  bool
	closing  bool            // no new calls
	ending   bool            // every call is being ended
	stopped  bool            // no requests at all
	changed  chan struct{}   // closed and replaced when a call is forgotten
	legs     map[string]*Leg // by Call-ID
	handlers sync.WaitGroup  // request handlers in flight; Add only under mu while !closing
	callsWG  sync.WaitGroup  // answered calls; Add only under mu while !closing

	client  *sipgo.Client
	udp     net.PacketConn
	sipPort int
	ready   chan struct{}
	addr    netip.AddrPort

	calls, refused, malformed atomic.Uint64
	live                      atomic.Int64
	malformedLog, refuseLog   rate.Sometimes
}

// NewServer checks cfg and returns a server. For every answered call (the caller's ACK has
// arrived) serve runs in its own goroutine with the leg and a context cancelled when the call
// ends or the server stops; the leg is hung up (transferred, with Config.TransferURI) when
// serve returns. A nil log means zap.NewNop().
func NewServer(cfg Config, serve func(ctx context.Context, leg media.Leg), log *zap.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:          cfg,
		serve:        serve,
		log:          log,
		parser:       sip.NewParser(),
		legs:         map[string]*Leg{},
		changed:      make(chan struct{}),
		ready:        make(chan struct{}),
		malformedLog: rate.Sometimes{Interval: 10 * time.Second},
		refuseLog:    rate.Sometimes{Interval: 10 * time.Second},
	}
	s.slog, s.logGate = newSlog(log)
	if cfg.InvitesPerMinute >= 0 {
		perMin, burst := cfg.InvitesPerMinute, cfg.InvitesBurst
		if perMin == 0 {
			perMin = 60
		}
		if burst <= 0 {
			burst = 20
		}
		s.invites = media.NewAddrLimiter(perMin, burst, 65536)
	}
	if len(cfg.Users) > 0 {
		s.auth = newDigestAuth(cfg.Realm, cfg.Users)
	}
	if cfg.TransferURI != "" {
		u, _ := parseTarget(cfg.TransferURI) // Validate checked it
		s.transfer = &u
	}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
		s.listenIP = a.Unmap()
	}
	bind := netip.IPv4Unspecified()
	if s.listenIP.IsValid() {
		bind = s.listenIP
	} else if host != "" {
		if a, err := netip.ParseAddr(host); err == nil {
			bind = a
		}
	}
	s.ports = portPool{bind: bind, min: cfg.RTPPortMin, max: cfg.RTPPortMax}
	s.base, s.baseCancel = context.WithCancel(context.Background())
	return s, nil
}

// Ready is closed once the server is listening; Addr is valid from then on.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address the server listens on (UDP and TCP); the zero value before Ready is
// closed.
func (s *Server) Addr() netip.AddrPort {
	select {
	case <-s.ready:
		return s.addr
	default:
		return netip.AddrPort{}
	}
}

// Live returns the number of calls in progress (from the INVITE to the end of the call).
func (s *Server) Live() int64 { return s.live.Load() }

// Calls returns the number of calls answered so far.
func (s *Server) Calls() uint64 { return s.calls.Load() }

// Refused returns the number of INVITEs refused for authentication (401 challenges not
// counted) and Malformed the number of datagrams that did not parse.
func (s *Server) Refused() uint64   { return s.refused.Load() }
func (s *Server) Malformed() uint64 { return s.malformed.Load() }

// ListenAndServe listens on Config.Listen, UDP and TCP on the same port (with port 0, a free
// port both are free on), and serves until ctx is done; see Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	host, portStr, _ := net.SplitHostPort(s.cfg.Listen)
	port, _ := strconv.Atoi(portStr)
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("sip: listen udp: %w", err)
		}
		got := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(got)))
		if err != nil {
			_ = pc.Close()
			if port == 0 && errors.Is(err, syscall.EADDRINUSE) && attempt < 20 {
				continue // the system's free UDP port is taken for TCP: try another
			}
			return fmt.Errorf("sip: listen tcp: %w", err)
		}
		return s.Serve(ctx, pc, ln)
	}
}

// Serve serves SIP on a UDP socket and a TCP listener (which should share a port: our
// Contact and Via name one) until ctx is done. Then it stops admitting calls, ends every call
// (BYE, bounded by a few seconds), waits for the handlers and calls it started, closes the
// SIP stack and both listeners, and returns nil. It returns an error for a config problem,
// a second call, or a listener that fails on its own. Either listener may be nil.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	closeAll := func() {
		if pc != nil {
			_ = pc.Close()
		}
		if ln != nil {
			_ = ln.Close()
		}
	}
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		closeAll()
		return errors.New("sip: Serve called twice")
	}
	s.started = true
	s.mu.Unlock()

	var ap netip.AddrPort
	switch {
	case pc != nil:
		ap = addrPort(pc.LocalAddr())
	case ln != nil:
		ap = addrPort(ln.Addr())
	default:
		return errors.New("sip: Serve needs a listener")
	}
	s.addr, s.sipPort, s.udp = ap, int(ap.Port()), pc

	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("callproof"),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(s.slog),
			sip.WithTransportLayerReadFilter(s.readFilter)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(s.slog)),
	)
	if err != nil {
		closeAll()
		return fmt.Errorf("sip: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(s.slog))
	if err == nil {
		s.client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(s.slog))
	}
	if err != nil {
		_ = ua.Close()
		closeAll()
		return fmt.Errorf("sip: server: %w", err)
	}
	srv.OnInvite(s.handle(s.onInvite))
	srv.OnAck(s.handle(s.onAck))
	srv.OnBye(s.handle(s.onBye))
	srv.OnCancel(s.handle(s.onCancel))
	srv.OnInfo(s.handle(s.onInfo))
	srv.OnNotify(s.handle(s.onNotify))
	srv.OnOptions(s.handle(s.onOptions))
	srv.OnUpdate(s.handle(s.onUpdate))
	srv.OnNoRoute(s.handle(s.onOther))

	qpc, qln := quietPacketConn(pc), quietListener(ln)
	var listeners sync.WaitGroup
	failed := make(chan error, 2)
	if pc != nil {
		listeners.Go(func() {
			if err := srv.ServeUDP(qpc); err != nil {
				failed <- err
			}
		})
	}
	if ln != nil {
		listeners.Go(func() {
			if err := srv.ServeTCP(qln); err != nil && !errors.Is(err, net.ErrClosed) {
				failed <- err
			}
		})
	}
	if s.auth == nil && len(s.cfg.AllowFrom) == 0 {
		s.log.Warn("sip: no users and no allow-from networks configured: every INVITE is refused")
	}
	s.log.Info("sip listening", zap.Stringer("addr", ap), zap.Bool("udp", pc != nil), zap.Bool("tcp", ln != nil),
		zap.Bool("digest", s.auth != nil), zap.Int("allow_from", len(s.cfg.AllowFrom)),
		zap.Bool("transfer", s.transfer != nil))
	close(s.ready)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-failed:
		s.log.Error("sip listener failed", zap.Error(serveErr))
	}
	s.shutdown()
	// sipgo runs each message in a goroutine of its own that cannot be waited for; one that
	// runs after the transport has closed opens a socket nobody closes. So: stop passing
	// messages on, let those in flight settle, close the stack, close the sockets, and sweep
	// the transport once more.
	if qpc != nil {
		qpc.quiet.Store(true)
	}
	if qln != nil {
		qln.quiet.Store(true)
		_ = ln.Close()
	}
	time.Sleep(settle)
	_ = ua.Close()
	closeAll()
	listeners.Wait()
	_ = ua.TransportLayer().Close()
	s.logGate.close()
	return serveErr
}

// settle is how long in-flight sipgo message goroutines get at shutdown.
const settle = 50 * time.Millisecond

// quietConn passes datagrams on until quiet is set, then reads and drops them.
type quietConn struct {
	net.PacketConn
	quiet atomic.Bool
}

func (q *quietConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := q.PacketConn.ReadFrom(b)
		if err != nil || !q.quiet.Load() {
			return n, a, err
		}
	}
}

func quietPacketConn(pc net.PacketConn) *quietConn {
	if pc == nil {
		return nil
	}
	return &quietConn{PacketConn: pc}
}

// quietTCP is quietConn for the listener: connections it accepts drop what they read once
// quiet is set.
type quietTCP struct {
	net.Listener
	quiet atomic.Bool
}

func (q *quietTCP) Accept() (net.Conn, error) {
	c, err := q.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &quietStream{Conn: c, quiet: &q.quiet}, nil
}

type quietStream struct {
	net.Conn
	quiet *atomic.Bool
}

func (q *quietStream) Read(b []byte) (int, error) {
	for {
		n, err := q.Conn.Read(b)
		if err != nil || !q.quiet.Load() {
			return n, err
		}
	}
}

func quietListener(ln net.Listener) *quietTCP {
	if ln == nil {
		return nil
	}
	return &quietTCP{Listener: ln}
}

// Shutdown is the first stage of a two-stage stop: new INVITEs get 503 from now on, and it
// waits for the live calls to end on their own. When ctx is done first it ends them (BYE, the
// flow sees ErrShutdown) and returns ctx's error once they have finished. Dialogs are served
// until Serve's own context ends, which is the second stage.
func (s *Server) Shutdown(ctx context.Context) error {
	for {
		s.mu.Lock()
		s.closing = true
		n, changed := len(s.legs), s.changed
		s.mu.Unlock()
		if n == 0 {
			s.callsWG.Wait()
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			s.endAll()
			s.callsWG.Wait()
			return ctx.Err()
		}
	}
}

// endAll stops admitting and ends every call.
func (s *Server) endAll() {
	s.mu.Lock()
	s.closing, s.ending = true, true
	legs := make([]*Leg, 0, len(s.legs))
	for _, l := range s.legs {
		legs = append(legs, l)
	}
	s.mu.Unlock()
	for _, l := range legs {
		l.end(endShutdown, ErrShutdown, "server stopping")
	}
}

// shutdown ends every call and waits for calls and handlers.
func (s *Server) shutdown() {
	s.endAll()
	s.callsWG.Wait()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.handlers.Wait()
	s.baseCancel()
}

func addrPort(a net.Addr) netip.AddrPort {
	switch v := a.(type) {
	case *net.UDPAddr:
		return v.AddrPort()
	case *net.TCPAddr:
		return v.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// handle wraps a request handler so that the server waits for it. Once the server is
// stopping, new calls get 503; requests in existing dialogs are still served until the calls
// have ended.
func (s *Server) handle(h func(req *sip.Request, tx sip.ServerTransaction)) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		s.mu.Lock()
		newCall := req.IsInvite() && (req.To() == nil || !req.To().Params.Has("tag"))
		if s.stopped || (s.closing && newCall) {
			s.mu.Unlock()
			if !req.IsAck() {
				res := sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, "Service Unavailable", nil)
				res.AppendHeader(sip.NewHeader("Retry-After", "30"))
				_ = tx.Respond(res)
			}
			return
		}
		s.handlers.Add(1)
		s.mu.Unlock()
		defer s.handlers.Done()
		h(req, tx)
	}
}

// readFilter sees every UDP datagram before sipgo parses it; see malformed.go.
func (s *Server) readFilter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	if !strings.EqualFold(p.Transport, "UDP") || len(bytes.Trim(data, "\r\n\x00")) == 0 {
		return data, nil
	}
	if _, err := s.parser.ParseSIP(data); err == nil {
		return data, nil
	}
	n := s.malformed.Add(1)
	res := badRequest(data)
	if res != nil && s.udp != nil && p.RemoteAddr != nil {
		_, _ = s.udp.WriteTo(res, p.RemoteAddr)
	}
	s.malformedLog.Do(func() {
		s.log.Warn("sip: malformed datagram", zap.Stringer("remote", p.RemoteAddr), zap.Int("bytes", len(data)),
			zap.Bool("answered_400", res != nil), zap.Uint64("malformed_total", n))
	})
	return nil, nil
}

// legFor finds the call an in-dialog request belongs to: same Call-ID and both tags.
func (s *Server) legFor(req *sip.Request) *Leg {
	cid := req.CallID()
	if cid == nil {
		return nil
	}
	s.mu.Lock()
	l := s.legs[cid.Value()]
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	to, from := req.To(), req.From()
	if to == nil || from == nil {
		return nil
	}
	toTag, _ := to.Params.Get("tag")
	fromTag, _ := from.Params.Get("tag")
	if toTag != l.localTag || fromTag != l.remoteTag {
		return nil
	}
	return l
}

func (s *Server) forget(l *Leg) {
	s.mu.Lock()
	if s.legs[l.callID] == l {
		delete(s.legs, l.callID)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.live.Add(-1)
}

// admitted decides whether an INVITE from src may proceed: by address, else by digest. It
// answers the INVITE when not.
func (s *Server) admitted(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort) (user string, ok bool) {
	for _, p := range s.cfg.AllowFrom {
		if p.Contains(src.Addr()) {
			return "", true
		}
	}
	if s.auth == nil {
		s.refuse(req, tx, src, "address not allowed")
		return "", false
	}
	user, verdict := s.auth.verify(req)
	switch verdict {
	case authOK:
		return user, true
	case authNone, authStale:
		res := sip.NewResponseFromRequest(req, sip.StatusUnauthorized, "Unauthorized", nil)
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", s.auth.challenge(verdict == authStale)))
		_ = tx.Respond(res)
		return "", false
	}
	s.refuse(req, tx, src, "bad credentials")
	return "", false
}

func (s *Server) refuse(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort, why string) {
	n := s.refused.Add(1)
	_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden", nil))
	s.refuseLog.Do(func() {
		s.log.Warn("sip INVITE refused", zap.String("why", why), zap.Stringer("remote", src), zap.Uint64("refused_total", n))
	})
}

// localIP is our address for a call from remote: PublicIP, else Listen's host, else the
// address the system routes toward the caller from.
func (s *Server) localIP(remote netip.Addr) netip.Addr {
	if s.cfg.PublicIP != "" {
		a, _ := netip.ParseAddr(s.cfg.PublicIP)
		return a.Unmap()
	}
	if s.listenIP.IsValid() {
		return s.listenIP
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(remote, 9)))
	if err == nil {
		defer c.Close()
		if a := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(); a.IsValid() && !a.IsUnspecified() {
			return a
		}
	}
	return netip.IPv4Unspecified() // nothing better: the caller's symmetric RTP still works
}

// onInvite admits a new call (or hands a re-INVITE to its leg): authentication, the SDP
// offer, an RTP socket, 100/180/200 and the ACK. The call then runs in its own goroutine.
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		if l := s.legFor(req); l != nil {
			l.onReInvite(req, tx)
			return
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request", nil))
		return
	}
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	if s.invites != nil && !s.invites.Allow(src.Addr()) {
		s.refused.Add(1)
		res := sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, "Too Many Calls From This Address", nil)
		res.AppendHeader(sip.NewHeader("Retry-After", "60"))
		_ = tx.Respond(res)
		return
	}
	user, ok := s.admitted(req, tx, src)
	if !ok {
		return
	}
	from, cseq, callID := req.From(), req.CSeq(), req.CallID()
	fromTag := ""
	if from != nil {
		fromTag, _ = from.Params.Get("tag")
	}
	if fromTag == "" || req.Contact() == nil || cseq == nil || callID == nil || req.To() == nil {
		res := sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request", nil)
		res.AppendHeader(sip.NewHeader("Warning", `399 callproof "INVITE needs a From tag and a Contact"`))
		_ = tx.Respond(res)
		return
	}
	if h := req.GetHeader("Require"); h != nil && strings.TrimSpace(h.Value()) != "" {
		// We implement no extension a caller could require (RFC 3261 §8.2.2.3).
		res := sip.NewResponseFromRequest(req, sip.StatusBadExtension, "Bad Extension", nil)
		res.AppendHeader(sip.NewHeader("Unsupported", strings.TrimSpace(h.Value())))
		_ = tx.Respond(res)
		return
	}
	cid := callID.Value()
	s.mu.Lock()
	_, dup := s.legs[cid]
	s.mu.Unlock()
	if dup {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusLoopDetected, "Loop Detected", nil))
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusTrying, "Trying", nil))

	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	var sess *session
	offer, err := sdpBody(ct, req.Body())
	if err == nil && offer == nil && len(req.Body()) > 0 {
		err = fmt.Errorf("%w: body of type %q has no session description", ErrSDP, ct)
	}
	if err == nil && offer != nil {
		sess, err = negotiate(offer)
	}
	if err != nil {
		s.log.Info("sip INVITE refused: media", zap.String("call", cid), zap.Stringer("remote", src), zap.Error(err))
		res := sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil)
		res.AppendHeader(sip.NewHeader("Warning", `305 callproof "`+warningText(err)+`"`))
		_ = tx.Respond(res)
		return
	}
	conn, err := s.ports.open()
	if err != nil {
		s.log.Error("sip INVITE refused: no RTP port", zap.String("call", cid), zap.Error(err))
		res := sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, "Service Unavailable", nil)
		res.AppendHeader(sip.NewHeader("Retry-After", "5"))
		_ = tx.Respond(res)
		return
	}

	l := s.newLeg(req, src, conn, sess, user)
	dua := sipgo.DialogUA{Client: s.client, ContactHDR: l.contact, RewriteContact: true}
	dlg, err := dua.ReadInvite(req, tx)
	if err != nil {
		_ = conn.Close()
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request", nil))
		return
	}
	l.dlg = dlg
	l.localTag, _ = dlg.InviteRequest.To().Params.Get("tag")

	s.mu.Lock()
	_, dup = s.legs[cid]
	if s.closing || dup {
		s.mu.Unlock()
		_ = conn.Close()
		if dup { // the same Call-ID twice at once (RFC 3261 §8.2.2.2: a merged request)
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusLoopDetected, "Loop Detected", nil))
		} else {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, "Service Unavailable", nil))
		}
		return
	}
	s.legs[cid] = l
	s.live.Add(1)
	s.mu.Unlock()

	if ok := s.answer(l, tx); !ok {
		l.end(endFailed, media.ErrHangup, "not answered")
		l.stream.close()
		s.forget(l)
		return
	}
	s.mu.Lock()
	if s.ending {
		s.mu.Unlock()
		l.end(endShutdown, ErrShutdown, "server stopping")
		l.bye()
		l.stream.close()
		s.forget(l)
		return
	}
	s.callsWG.Add(1)
	s.mu.Unlock()
	s.calls.Add(1)
	l.log.Info("sip call started", zap.String("caller", media.MaskPhone(l.st.From)),
		zap.String("to", media.MaskPhone(l.st.To)), zap.String("verstat", l.st.Verstat),
		zap.String("request", l.st.Param("request")), zap.String("lang", l.st.Param("lang")),
		zap.String("transport", l.transport), zap.Stringer("remote", src), zap.String("auth_user", l.authUser),
		zap.String("codec", l.codecName()), zap.Int("rtp_port", l.stream.port()))
	go func() {
		defer s.callsWG.Done()
		l.run()
	}()
}

// answer rings, sends the 200 with our SDP and waits for the ACK. It reports whether the call
// is up.
func (s *Server) answer(l *Leg, tx sip.ServerTransaction) bool {
	req := l.dlg.InviteRequest
	_ = l.dlg.Respond(sip.StatusRinging, "Ringing", nil, l.contact.Clone())
	l.mu.Lock()
	sess := l.sess
	l.mu.Unlock()
	body, err := l.sdpFor(sess)
	if err != nil {
		l.log.Error("sip: building SDP", zap.Error(err))
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Internal Error", nil))
		return false
	}
	res := l.response(req, sip.StatusOK, "OK", body)
	l.dlg.InviteResponse = res
	ack, err := l.sendUntilAck(tx, res, l.inviteSeq)
	if err != nil {
		if kind, _ := l.endedBy(); kind == 0 {
			l.log.Warn("sip call not established", zap.Error(err))
		}
		return false
	}
	if sess == nil && !l.answerInAck(ack) {
		l.end(endFailed, fmt.Errorf("%w: no usable answer in the ACK", ErrSDP), "bad answer")
		l.bye()
		return false
	}
	return true
}

func (l *Leg) codecName() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sess == nil {
		return ""
	}
	return l.sess.codecName()
}

// newLeg builds a call's leg from its INVITE.
func (s *Server) newLeg(req *sip.Request, src netip.AddrPort, conn *net.UDPConn, sess *session, user string) *Leg {
	cid := req.CallID().Value()
	local := s.localIP(src.Addr())
	transport := strings.ToUpper(req.Transport())
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "callproof", Host: local.String(), Port: s.sipPort}}
	if transport == "TCP" {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", "tcp")
	}
	fromTag, _ := req.From().Params.Get("tag")
	rc := media.ReceiverConfig{Mode: s.cfg.DTMF}
	l := &Leg{
		s:         s,
		log:       s.log.With(zap.String("call", cid)),
		callID:    cid,
		transport: transport,
		local:     local,
		contact:   contact,
		target:    *req.Contact().Address.Clone(),
		remoteTag: fromTag,
		inviteSeq: req.CSeq().SeqNo,
		remoteSeq: req.CSeq().SeqNo,
		authUser:  user,
		began:     time.Now(),
		sess:      sess,
		origin:    newOrigin(),
		ackCh:     make(chan ackMsg, 4),
		notifyCh:  make(chan int, 1),
		byeCh:     make(chan struct{}),
		endCh:     make(chan struct{}),
	}
	if s.cfg.NewDetector != nil && s.cfg.DTMF != media.DTMFEvents {
		rc.Detector = gatedDetector{d: s.cfg.NewDetector(), heard: &l.heard}
	}
	l.rx = media.NewReceiver(rc)
	l.ctx, l.cancel = context.WithCancel(s.base)
	p := idleParams()
	if sess != nil {
		p = paramsFor(sess)
	}
	l.stream = newStream(conn, l.rx, &l.heard, p, s.cfg.RTPTimeout, func() {
		l.end(endTimeout, fmt.Errorf("%w for %s", ErrRTPTimeout, s.cfg.RTPTimeout), "no RTP")
	})
	l.st = s.startFor(req, cid)
	// Start is the leg's first event even when an INFO digit overtakes the ACK.
	l.rx.Start(l.st)
	return l
}

// startFor reads the call's metadata from the INVITE.
func (s *Server) startFor(req *sip.Request, cid string) *media.Start {
	st := &media.Start{CallID: cid, Transport: "sip", Params: map[string]string{}}
	var values []string
	for _, h := range req.GetHeaders("P-Asserted-Identity") {
		values = append(values, h.Value())
		if len(values) >= 4 {
			break
		}
	}
	if from := req.From(); from != nil {
		values = append(values, from.Value())
	}
	id := mergeIdentities(values...)
	st.From, st.Verstat = normalizeNumber(id.user), id.verstat
	dialled := req.Recipient.User
	if dialled == "" {
		if to := req.To(); to != nil {
			dialled = to.Address.User
		}
	}
	if u, _, _ := strings.Cut(dialled, ";"); len(u) <= maxIdentityLen && printable(u) {
		st.To = normalizeNumber(u)
	}
	if v := headerParam(req, s.cfg.RequestHeader); v != "" {
		st.Params["request"] = v
	} else if v := s.cfg.DialedMap[req.Recipient.User]; v != "" {
		st.Params["request"] = v
	} else if v := s.cfg.DialedMap[st.To]; v != "" {
		st.Params["request"] = v
	}
	if v := headerParam(req, s.cfg.LangHeader); v != "" {
		st.Params["lang"] = v
	}
	return st
}

// headerParam reads a parameter header: a short token (letters, digits, - and _), else "".
func headerParam(req *sip.Request, name string) string {
	h := req.GetHeader(name)
	if h == nil {
		return ""
	}
	v := strings.TrimSpace(h.Value())
	if v == "" || len(v) > 64 {
		return ""
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return ""
		}
	}
	return v
}

// onAck routes an ACK to its call. ACKs get no response.
func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	l := s.legFor(req)
	if l == nil || req.CSeq() == nil {
		return
	}
	seq := req.CSeq().SeqNo
	if seq == l.inviteSeq {
		_ = l.dlg.ReadAck(req, tx)
	}
	a := ackMsg{cseq: seq, body: req.Body()}
	if h := req.ContentType(); h != nil {
		a.contentType = h.Value()
	}
	select {
	case l.ackCh <- a:
	default: // retransmitted ACKs nobody waits for
	}
}

// onBye ends the call the caller hung up.
func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	l := s.legFor(req)
	if l == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	if err := l.dlg.ReadBye(req, tx); err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	}
	l.callerBye()
}

// onCancel answers a CANCEL that matched no INVITE transaction (sipgo answers the ones that
// do, with 200 and 487 for the INVITE).
func (s *Server) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
}

// onInfo takes DTMF from SIP INFO: application/dtmf-relay and application/dtmf bodies. An
// INFO without a body (a keep-alive some trunks send) gets 200; other bodies 415.
func (s *Server) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	l := s.legFor(req)
	if l == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	if !l.checkSeq(req) {
		l.respond(tx, req, sip.StatusInternalServerError, "CSeq Out Of Order")
		return
	}
	body := req.Body()
	if len(body) == 0 {
		l.respond(tx, req, sip.StatusOK, "OK")
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	mt, _, _ := mime.ParseMediaType(ct)
	if mt != "application/dtmf-relay" && mt != "application/dtmf" {
		res := sip.NewResponseFromRequest(req, sip.StatusUnsupportedMediaType, "Unsupported Media Type", nil)
		res.AppendHeader(sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		_ = tx.Respond(res)
		return
	}
	d, _, err := dtmf.ParseSIPInfo(ct, body)
	if err != nil {
		l.respond(tx, req, sip.StatusBadRequest, "Bad DTMF Body")
		return
	}
	// The digit goes to the flow before the 200: the caller sends its next INFO only after
	// the 200, so key presses reach the flow in the order they were pressed.
	if !l.ended.Load() {
		l.sipInfo.Add(1)
		l.rx.Digit(d, media.SourceSIPInfo)
	}
	l.respond(tx, req, sip.StatusOK, "OK")
}

// onNotify takes the transferee's progress reports on our REFER (RFC 3515 §2.4.4).
func (s *Server) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	l := s.legFor(req)
	if l == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	ev := req.GetHeader("Event")
	if ev == nil || !strings.EqualFold(strings.TrimSpace(strings.SplitN(ev.Value(), ";", 2)[0]), "refer") {
		l.respond(tx, req, 489, "Bad Event")
		return
	}
	l.respond(tx, req, sip.StatusOK, "OK")
	if code := parseSipfrag(req.Body()); code >= 200 {
		select {
		case l.notifyCh <- code:
		default:
		}
	}
}

// onOptions answers capability queries and keep-alives.
func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp, application/dtmf-relay, application/dtmf, message/sipfrag"))
	_ = tx.Respond(res)
}

// onUpdate answers session refreshes (RFC 4028 via UPDATE, RFC 3311) without an offer; an
// UPDATE carrying an offer is refused with 488 and the session stays as it is.
func (s *Server) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	l := s.legFor(req)
	if l == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	if len(req.Body()) > 0 {
		l.respond(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here")
		return
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	res.AppendHeader(l.contact.Clone())
	_ = tx.Respond(res)
}

// onOther answers methods we do not implement with 405 and the Allow list.
func (s *Server) onOther(req *sip.Request, tx sip.ServerTransaction) {
	if req.IsAck() {
		return
	}
	res := sip.NewResponseFromRequest(req, sip.StatusMethodNotAllowed, "Method Not Allowed", nil)
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	_ = tx.Respond(res)
}
