package webrtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
)

// gatherTimeout bounds ICE gathering before the answer is sent; candidates gathered by then
// (at least the host ones, which take milliseconds) go into the answer.
const gatherTimeout = 5 * time.Second

// callParams are the offer request's query parameters (or Callproof-<Name> headers) that
// become Start.Params. Values are 1 to 64 characters of letters, digits, '-', '_' and '.'.
var callParams = [...]string{"request", "lang", "account"}

// Handler serves the WebRTC endpoint, in the manner of WHIP (RFC 9725) without trickle ICE:
// POST OfferPath with an SDP offer answers 201 with the SDP answer once ICE gathering has
// completed, and a Location (OfferPath/<id>) that DELETE hangs up. Each accepted offer
// becomes a Leg, served in its own goroutine once the connection is up. Its methods are safe
// for concurrent use.
type Handler struct {
	cfg        Config
	serve      func(ctx context.Context, leg media.Leg)
	log        *zap.Logger
	api        *webrtc.API
	iceServers []webrtc.ICEServer
	limiter    *sourceLimiter

	base   context.Context // cancelled by Close
	cancel context.CancelFunc

	mu     sync.Mutex
	calls  map[string]*Leg // by resource id
	closed bool
	wg     sync.WaitGroup // one per call goroutine
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns the WebRTC endpoint. For every call whose connection comes up, serve runs
// in the call's own goroutine with the leg and a context cancelled when the call ends; once
// serve returns the leg hangs up. cfg must pass Validate. A nil log means zap.NewNop().
func NewHandler(cfg Config, serve func(ctx context.Context, leg media.Leg), log *zap.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	api, err := newAPI(&cfg, log.Named("pion"))
	if err != nil {
		return nil, err
	}
	h := &Handler{
		cfg:     cfg,
		serve:   serve,
		log:     log,
		api:     api,
		limiter: newSourceLimiter(cfg.OffersPerMinute),
		calls:   make(map[string]*Leg),
	}
	for _, u := range cfg.ICEServers {
		s := webrtc.ICEServer{URLs: []string{u}}
		if p, err := stun.ParseURI(u); err == nil && (p.Scheme == stun.SchemeTypeTURN || p.Scheme == stun.SchemeTypeTURNS) {
			s.Username, s.Credential = cfg.TURNUsername, cfg.TURNCredential
		}
		h.iceServers = append(h.iceServers, s)
	}
	h.base, h.cancel = context.WithCancel(context.Background())
	return h, nil
}

// newAPI builds the one pion API every call shares: PCMU, PCMA and telephone-event at 8 kHz
// only, no interceptors (G.711 needs no NACK, congestion control or reports), UDP host
// candidates on the configured ports and addresses, no mDNS.
func newAPI(cfg *Config, log *zap.Logger) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: clockRate, Channels: 1}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: clockRate, Channels: 1}, PayloadType: 8},
		// The payload type is only our default; answers use the offer's (Chrome: 126).
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mimeTelephoneEvent, ClockRate: clockRate, Channels: 1, SDPFmtpLine: "0-16"}, PayloadType: 101},
	} {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("webrtc: register %s: %w", c.MimeType, err)
		}
	}
	s := webrtc.SettingEngine{LoggerFactory: pionLogs{z: log}}
	s.SetNetworkTypes(networkTypes(cfg.PublicIPs))
	s.SetIncludeLoopbackCandidate(cfg.AllowLoopback)
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if cfg.PortMin != 0 {
		if err := s.SetEphemeralUDPPortRange(cfg.PortMin, cfg.PortMax); err != nil {
			return nil, fmt.Errorf("%w: port range: %v", ErrConfig, err)
		}
	}
	if len(cfg.PublicIPs) > 0 {
		if err := s.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("%w: public ips: %v", ErrConfig, err)
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{})), nil
}

// networkTypes returns UDP over IPv4 and IPv6, or, with public IPs configured, only the
// families they cover: a host candidate the rewrite cannot map would publish an internal
// address.
func networkTypes(public []string) []webrtc.NetworkType {
	if len(public) == 0 {
		return []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	}
	var v4, v6 bool
	for _, s := range public {
		if ip := net.ParseIP(s); ip != nil && ip.To4() != nil {
			v4 = true
		} else {
			v6 = true
		}
	}
	var types []webrtc.NetworkType
	if v4 {
		types = append(types, webrtc.NetworkTypeUDP4)
	}
	if v6 {
		types = append(types, webrtc.NetworkTypeUDP6)
	}
	return types
}

// ServeHTTP answers POST (an offer) and DELETE (a hang-up of OfferPath/<id>; the id is the
// last path segment, so the handler works under any mount point).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		h.offer(w, r)
	case http.MethodDelete:
		h.hangup(w, r)
	default:
		w.Header().Set("Allow", "POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// refuse answers a refused offer and logs why at debug level (peers cause these; the log must
// not become theirs to flood).
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.log.Debug("webrtc offer refused", zap.Int("status", status), zap.String("why", msg),
		zap.String("remote", r.RemoteAddr))
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, msg, status)
}

func (h *Handler) offer(w http.ResponseWriter, r *http.Request) {
	if h.isClosed() {
		w.Header().Set("Retry-After", "5")
		h.refuse(w, r, http.StatusServiceUnavailable, "shutting down")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		h.refuse(w, r, http.StatusUnsupportedMediaType, "want Content-Type: application/sdp")
		return
	}
	if !h.limiter.allow(sourceKey(r.RemoteAddr)) {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, 60/h.cfg.OffersPerMinute)))
		h.refuse(w, r, http.StatusTooManyRequests, "too many offers from this address")
		return
	}
	if r.ContentLength > int64(h.cfg.MaxOfferBytes) {
		h.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("offer larger than %d bytes", h.cfg.MaxOfferBytes))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.cfg.MaxOfferBytes)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("offer larger than %d bytes", h.cfg.MaxOfferBytes))
			return
		}
		h.refuse(w, r, http.StatusBadRequest, "could not read the offer")
		return
	}
	if err := checkOffer(string(body)); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrNoCodec) {
			status = http.StatusNotAcceptable
		}
		h.refuse(w, r, status, err.Error())
		return
	}
	params, err := offerParams(r)
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, err.Error())
		return
	}
	id := randomHex(16)
	st := &media.Start{CallID: "WR" + randomHex(16), Transport: "webrtc", Params: params}
	log := h.log.With(zap.String("call", st.CallID))
	ctx, cancel := context.WithCancel(h.base)
	l := newLeg(id, st, &h.cfg, log, cancel)
	l.remote = r.RemoteAddr
	if !h.reserve(l) {
		cancel()
		w.Header().Set("Retry-After", "5")
		h.refuse(w, r, http.StatusServiceUnavailable, "too many calls")
		return
	}
	answer, status, err := h.negotiate(r.Context(), l, string(body))
	if err != nil {
		h.release(l)
		h.wg.Done()
		cancel()
		if status == http.StatusInternalServerError {
			log.Error("webrtc offer failed", zap.Error(err)) // ours, not the peer's
		}
		h.refuse(w, r, status, err.Error())
		return
	}
	go h.run(ctx, l)
	log.Debug("webrtc offer answered", zap.String("remote", l.remote))
	loc := strings.TrimSuffix(r.URL.Path, "/") + "/" + id
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", loc)
	w.Header().Set("Callproof-Call-Id", st.CallID)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// negotiate creates the call's peer connection, answers the offer and waits for ICE
// gathering. On failure the peer connection is closed and the HTTP status to answer with is
// returned.
func (h *Handler) negotiate(ctx context.Context, l *Leg, offer string) (string, int, error) {
	pc, err := h.api.NewPeerConnection(webrtc.Configuration{ICEServers: h.iceServers})
	if err != nil {
		return "", http.StatusInternalServerError, fmt.Errorf("webrtc: new peer connection: %w", err)
	}
	l.pc = pc
	pc.OnTrack(l.onTrack)
	pc.OnConnectionStateChange(l.onState)
	fail := func(status int, err error) (string, int, error) {
		_ = pc.GracefulClose()
		l.closeReaders()
		return "", status, err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(http.StatusBadRequest, fmt.Errorf("%w: the offer was not accepted", ErrBadOffer))
	}
	sender, err := pc.AddTrack(l.track)
	if err != nil {
		return fail(http.StatusNotAcceptable, ErrNoCodec)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(http.StatusNotAcceptable, ErrNoCodec)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(http.StatusInternalServerError, fmt.Errorf("webrtc: set local description: %w", err))
	}
	if _, ok := l.track.binding(); !ok {
		return fail(http.StatusNotAcceptable, ErrNoCodec)
	}
	t := time.NewTimer(gatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		h.log.Warn("webrtc: ICE gathering incomplete; answering with the candidates gathered so far",
			zap.String("call", l.start.CallID), zap.Duration("waited", gatherTimeout))
	case <-ctx.Done():
		return fail(http.StatusServiceUnavailable, fmt.Errorf("webrtc: offer abandoned: %w", context.Cause(ctx)))
	case <-h.base.Done():
		return fail(http.StatusServiceUnavailable, ErrShutdown)
	}
	if !l.addReader() {
		return fail(http.StatusServiceUnavailable, ErrShutdown)
	}
	go l.drainRTCP(sender)
	return pc.LocalDescription().SDP, http.StatusCreated, nil
}

// run owns one call after its answer: it waits for the connection, serves the leg, and when
// the call ends closes the peer connection and joins the leg's goroutines.
func (h *Handler) run(ctx context.Context, l *Leg) {
	defer h.wg.Done()
	defer h.release(l)
	began := time.Now()
	go l.writeLoop()
	select {
	case <-l.connected:
		l.markStarted()
		b, _ := l.track.binding()
		l.log.Info("webrtc call started", zap.String("remote", l.remote), zap.Strings("params", paramNames(l.start.Params)),
			zap.String("codec", codecName(b.audio)), zap.Bool("telephone_event", b.hasEv),
			zap.Duration("setup", time.Since(began)))
		if h.serve != nil {
			h.serve(ctx, l)
		}
		_ = l.Hangup("done")
	case <-l.endCh:
	}
	<-l.endCh
	_ = l.pc.GracefulClose()
	l.closeReaders()
	<-l.writerDone
	s := l.Stats()
	l.log.Info("webrtc call ended", zap.Duration("duration", time.Since(began)),
		zap.String("reason", l.endReason()), zap.NamedError("err", l.rx.Err()),
		zap.Uint64("packets_in", s.PacketsIn), zap.Uint64("frames_in", s.FramesIn),
		zap.Uint64("frames_out", s.FramesOut), zap.Uint64("digits", s.Digits),
		zap.Uint64("bad_packets", s.BadPackets), zap.Uint64("drops", s.Drops),
		zap.Uint64("marks", s.Marks), zap.Uint64("clears", s.Clears), zap.Uint64("late", s.Late))
}

// hangup answers DELETE OfferPath/<id>: the caller hung up.
func (h *Handler) hangup(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	h.mu.Lock()
	l := h.calls[id]
	h.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	if l == nil || id == "" {
		http.Error(w, "no such call", http.StatusNotFound)
		return
	}
	l.end(media.ErrHangup, "caller hung up (DELETE)")
	w.WriteHeader(http.StatusOK)
}

// reserve registers a new call unless the handler is closed or full. A reserved call counts
// in h.wg from here, so Close also waits for offers still being negotiated; the caller calls
// h.wg.Done when negotiation fails, run when the call ends.
func (h *Handler) reserve(l *Leg) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.calls) >= h.cfg.MaxCalls {
		return false
	}
	h.calls[l.id] = l
	h.wg.Add(1)
	return true
}

func (h *Handler) release(l *Leg) {
	h.mu.Lock()
	delete(h.calls, l.id)
	h.mu.Unlock()
}

func (h *Handler) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// Calls returns the number of calls live (answered and not yet torn down).
func (h *Handler) Calls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

// Close refuses new offers, ends every live call (its Hangup event carries ErrShutdown),
// closes their peer connections and waits for their goroutines, serve functions included. It
// is idempotent.
func (h *Handler) Close() error {
	h.mu.Lock()
	h.closed = true
	legs := make([]*Leg, 0, len(h.calls))
	for _, l := range h.calls {
		legs = append(legs, l)
	}
	h.mu.Unlock()
	// End the legs before cancelling the serve functions' context: a serve function that
	// returns on the cancellation would otherwise hang its leg up first, and the flow would
	// see an ordinary hangup instead of ErrShutdown.
	for _, l := range legs {
		l.end(ErrShutdown, "server shutting down")
	}
	h.cancel()
	h.wg.Wait()
	return nil
}

// offerParams reads the call's parameters from the query string or, failing that, from
// Callproof-<Name> headers.
func offerParams(r *http.Request) (map[string]string, error) {
	q := r.URL.Query()
	out := map[string]string{}
	for _, name := range callParams {
		v := q.Get(name)
		if v == "" {
			v = r.Header.Get("Callproof-" + name)
		}
		if v == "" {
			continue
		}
		if !validParam(v) {
			return nil, fmt.Errorf("%w: parameter %s: want 1 to 64 letters, digits, '-', '_' or '.'", ErrBadOffer, name)
		}
		out[name] = v
	}
	return out, nil
}

func validParam(v string) bool {
	if len(v) == 0 || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// paramNames lists which parameters a call has, for the log (values may be personal data).
func paramNames(p map[string]string) []string {
	var names []string
	for _, n := range callParams {
		if _, ok := p[n]; ok {
			names = append(names, n)
		}
	}
	return names
}

func codecName(k codecKind) string {
	switch k {
	case kindPCMU:
		return "PCMU"
	case kindPCMA:
		return "PCMA"
	}
	return "none"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
