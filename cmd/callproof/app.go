package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/callproof/callproof/ivr"
	"github.com/callproof/callproof/kba"
	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/asterisk"
	"github.com/callproof/callproof/media/audiosocket"
	"github.com/callproof/callproof/media/dtmf"
	"github.com/callproof/callproof/media/freeswitch"
	"github.com/callproof/callproof/media/jambonz"
	"github.com/callproof/callproof/media/sip"
	"github.com/callproof/callproof/media/telnyx"
	"github.com/callproof/callproof/media/twilio"
	"github.com/callproof/callproof/media/vonage"
	"github.com/callproof/callproof/media/webrtc"
	"github.com/callproof/callproof/prompts"
	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/agent"
	"github.com/callproof/callproof/sessions/audit"
	"github.com/callproof/callproof/sessions/otp"
	"github.com/callproof/callproof/sessions/redis"
	"github.com/callproof/callproof/sessions/token"
	"github.com/callproof/callproof/sessions/webhook"
)

// App is a wired Callproof node: everything the server runs, built from a Config. The
// end-to-end tests build one without flags.
type App struct {
	cfg       Config
	log       *zap.Logger
	directory *kba.Directory
	catalog   *prompts.Catalog
	attempts  sessions.Attempts
	replay    sessions.Replay
	redis     *redis.Store // nil when state is in memory
	signer    *token.Signer
	hub       *agent.Hub
	engine    *ivr.Engine
	handler   http.Handler
	metrics   *metrics

	limiter *media.AddrLimiter

	webrtc      *webrtc.Handler
	sip         *sip.Server
	sipUDP      net.PacketConn
	sipTCP      net.Listener
	otp         *otp.Service
	audit       *audit.Log
	auditSource audit.Source // with Redis on the writer node: the shared stream to persist
	forwarded   chan struct{}
	crm         *webhook.Dispatcher
	crmQueue    *webhook.FileQueue
	inbox       *otp.Inbox
	registry    *audiosocket.Registry
	audioSocket *audiosocket.Server
	asLn        net.Listener

	calls    sync.WaitGroup
	live     atomic.Int64
	draining atomic.Bool
	// hard is cancelled when live calls must stop now (second signal, drain deadline).
	hard       context.Context
	hardCancel context.CancelFunc
	closeOnce  sync.Once
}

// NewApp builds a node from cfg. cfg must have been through Config.finish. In demo mode
// passcodes without a configured sender go to console and the /phone page's inbox.
func NewApp(cfg Config, log *zap.Logger, demo bool, console io.Writer) (*App, error) {
	if log == nil {
		log = zap.NewNop()
	}
	a := &App{cfg: cfg, log: log}
	a.hard, a.hardCancel = context.WithCancel(context.Background())
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	var err error
	if cfg.Directory != "" {
		data, err := os.ReadFile(cfg.Directory)
		if err != nil {
			return nil, fmt.Errorf("directory: %w", err)
		}
		if a.directory, err = kba.ParseDirectory(data); err != nil {
			return nil, fmt.Errorf("directory %s: %w", cfg.Directory, err)
		}
	} else {
		a.directory = kba.DemoDirectory()
	}
	if a.catalog, err = prompts.Load(); err != nil {
		return nil, err
	}
	serverKey, err := loadOrCreateServerKey(cfg.Data)
	if err != nil {
		return nil, err
	}
	var key []byte
	var signerOpts []token.Option
	if cfg.SigningKeyDir != "" {
		kd, err := token.LoadKeyDir(cfg.SigningKeyDir)
		if err != nil {
			return nil, fmt.Errorf("signing key directory: %w", err)
		}
		key, signerOpts = kd.Signing, kd.Options()
		log.Info("signing key", zap.String("file", kd.SigningFile), zap.Int("published", len(kd.Verification)))
	} else if cfg.SigningKeyFile != "" {
		k, err := token.LoadKeyFile(cfg.SigningKeyFile)
		if err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
		key = k
	} else {
		k, err := token.LoadOrCreateKey(cfg.Data)
		if err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
		key = k
	}
	a.signer, err = token.NewSigner(key, token.Config{Issuer: cfg.Issuer, Audience: cfg.Audience, Lifetime: cfg.TokenLifetime}, signerOpts...)
	if err != nil {
		return nil, err
	}
	var alog sessions.AgentLog
	if cfg.Redis != "" {
		rs, err := redis.New(redis.Config{URL: cfg.Redis, Password: cfg.RedisPassword}, log.Named("redis"),
			redis.WithSealKey(serverKey)) // tokens in the agent log sealed at rest
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := rs.Connect(ctx); err != nil {
			// Serve anyway: /readyz says why, calls fail closed (technical_difficulty) and agents
			// are told, until Redis answers; go-redis reconnects by itself.
			log.Error("redis unreachable at start: serving without verification until it answers", zap.Error(err))
		}
		cancel()
		a.redis, a.attempts, a.replay, alog = rs, rs, rs, rs
	} else {
		m := sessions.NewMemory()
		a.attempts, a.replay, alog = m, m, m
	}
	a.hub = agent.NewHub(log.Named("agent"), alog)
	if a.redis != nil {
		a.redis.OnStatus(a.storeStatus)
	}
	lockout := kba.DefaultLockout()
	if cfg.LockoutFailures > 0 {
		lockout.MaxFailures = cfg.LockoutFailures
	}
	if cfg.LockoutWindow > 0 {
		lockout.Window = cfg.LockoutWindow
	}
	if cfg.LockoutDuration > 0 {
		lockout.Duration = cfg.LockoutDuration
	}
	if cfg.LockoutMaxDuration > 0 {
		lockout.MaxDuration = cfg.LockoutMaxDuration
	}
	policies, err := buildPolicies(cfg.Policies)
	if err != nil {
		return nil, err
	}
	// Passcode state is shared through Redis when there is one, so that send caps, resend
	// gaps and failure counts hold across nodes.
	var otpStore otp.Store = otp.NewMemory()
	if a.redis != nil {
		otpStore = a.redis.OTPStore()
	}
	a.otp, a.inbox, err = newPasscodes(cfg, demo, serverKey, otpStore, console, log.Named("otp"))
	if err != nil {
		return nil, err
	}
	retention := audit.DefaultRetention
	if cfg.AuditRetention != "" {
		if retention, err = audit.ParseRetention(cfg.AuditRetention); err != nil {
			return nil, fmt.Errorf("audit_retention: %w", err)
		}
	}
	if a.audit, err = audit.Open(cfg.Data, audit.WithLogger(log.Named("audit")), audit.WithRetention(retention)); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	var sink audit.Sink = a.audit
	if a.redis != nil {
		node := cfg.NodeName
		if node == "" {
			node, _ = os.Hostname()
		}
		stream := a.redis.AuditStream(node)
		sink = stream
		if cfg.AuditWriter == nil || *cfg.AuditWriter {
			a.auditSource = stream
		}
	}
	a.metrics = newMetrics()
	a.metrics.agentHub(a.hub)
	engineOpts := []ivr.Option{ivr.WithLogger(log.Named("ivr")), ivr.WithPasscodes(passcodes{a.otp}),
		ivr.WithReplay(countedReplay{a.replay, a.metrics}), ivr.WithRecorder(countedRecorder{auditRecorder{sink}, a.metrics})}
	if a.redis != nil {
		// A Redis known to be down (or restoring) ends a new call at once with
		// technical_difficulty, rather than after the menus and the account number.
		engineOpts = append(engineOpts, ivr.WithAvailability(func() error {
			if st := a.redis.Status(); st.State != redis.StateUp {
				return fmt.Errorf("redis %s since %s", st.State, st.Since.UTC().Format(time.RFC3339))
			}
			return nil
		}))
	}
	if len(cfg.CRMWebhookURLs) > 0 {
		// With Redis the queue is shared, so any node delivers what any node queued; else it
		// is a journal in the data directory.
		var q webhook.Queue
		if a.redis != nil {
			q = a.redis.WebhookQueue()
		} else {
			fq, err := webhook.OpenFileQueue(cfg.Data, webhook.WithQueueLogger(log.Named("webhook")))
			if err != nil {
				return nil, fmt.Errorf("crm webhook queue: %w", err)
			}
			a.crmQueue, q = fq, fq
		}
		a.crm, err = webhook.NewDispatcher(webhook.Config{URLs: cfg.CRMWebhookURLs, Secret: cfg.CRMWebhookSecret}, q,
			webhook.WithLogger(log.Named("webhook")), webhook.WithSealKey(sealKey(serverKey)))
		if err != nil {
			return nil, fmt.Errorf("crm webhook: %w", err)
		}
		engineOpts = append(engineOpts, ivr.WithNotifier(crmNotifier{a.crm}))
	}
	a.engine, err = ivr.New(ivr.Config{
		FirstDigitTimeout: cfg.FirstDigitTimeout,
		InterDigitTimeout: cfg.InterDigitTimeout,
		Lockout:           lockout,
		Policies:          policies,
	}, a.catalog, a.directory, countedAttempts{a.attempts, a.metrics}, a.signer, countedPublisher{a.hub, a.metrics},
		serverKey, engineOpts...)
	if err != nil {
		return nil, err
	}
	mode, err := media.ParseDTMFMode(cfg.DTMF)
	if err != nil {
		return nil, err
	}
	a.limiter = media.NewAddrLimiter(cfg.StreamsPerMinute, cfg.StreamsBurst, 65536)
	if a.crm != nil {
		a.metrics.webhookStates(a.crm)
	}
	for _, t := range []string{"twilio", "telnyx", "vonage", "jambonz", "freeswitch", "asterisk", "audiosocket", "webrtc", "sip"} {
		a.metrics.live.WithLabelValues(t) // export zero before the first call
	}
	detector := func() media.ToneDetector { return dtmf.New(dtmf.Config{}) }
	modeFor := func(platform string) media.DTMFMode {
		if m, ok := cfg.DTMFPlatforms[platform]; ok {
			pm, _ := media.ParseDTMFMode(m) // validated in Config.finish
			return pm
		}
		return mode
	}
	tw := twilio.Config{AuthToken: cfg.TwilioAuthToken, PublicURL: cfg.PublicURL, DTMF: modeFor("twilio"), NewDetector: detector}
	if err := tw.Validate(); err != nil {
		return nil, err
	}
	tx := telnyx.Config{AuthToken: cfg.TelnyxStreamToken, DTMF: modeFor("telnyx"), NewDetector: detector}
	if err := tx.Validate(); err != nil {
		return nil, err
	}
	detectorAt := func(rate int) media.ToneDetector { return dtmf.New(dtmf.Config{SampleRate: rate}) }
	vc := vonage.Config{Token: cfg.VonageToken, DTMF: modeFor("vonage"), NewDetector: detectorAt}
	jb := jambonz.Config{Username: cfg.JambonzUsername, Password: cfg.JambonzPassword, DTMF: modeFor("jambonz"), NewDetector: detectorAt}
	fsMode := modeFor("freeswitch")
	if fsMode == media.DTMFEvents { // mod_audio_fork forwards no digit events: tones are all there is
		fsMode = media.DTMFInband
	}
	fsw := freeswitch.Config{Username: cfg.FreeSWITCHUsername, Password: cfg.FreeSWITCHPassword, DTMF: fsMode, NewDetector: detectorAt}
	for _, v := range []interface{ Validate() error }{vc, jb, fsw} {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	vh := vonage.NewHandler(vc, a.serveLeg, log.Named("vonage"))
	a.webrtc, err = webrtc.NewHandler(webrtc.Config{PortMin: cfg.WebRTCPortMin, PortMax: cfg.WebRTCPortMax,
		PublicIPs: cfg.WebRTCPublicIPs, ICEServers: cfg.WebRTCICEServers, TURNUsername: cfg.WebRTCTURNUsername,
		TURNCredential: cfg.WebRTCTURNCredential, AllowLoopback: *cfg.WebRTCAllowLoopback, DTMF: modeFor("webrtc"),
		NewDetector: detector}, a.serveLeg, log.Named("webrtc"))
	if err != nil {
		return nil, err
	}
	if cfg.SIP != "" {
		var sipAllow []netip.Prefix
		for _, p := range cfg.SIPAllowFrom {
			sipAllow = append(sipAllow, netip.MustParsePrefix(p))
		}
		a.sip, err = sip.NewServer(sip.Config{Listen: cfg.SIP, RTPPortMin: cfg.SIPRTPPortMin, RTPPortMax: cfg.SIPRTPPortMax,
			PublicIP: cfg.SIPPublicIP, Users: cfg.SIPUsers, AllowFrom: sipAllow, DialedMap: cfg.SIPDialedMap,
			TransferURI: cfg.SIPTransferURI, DTMF: modeFor("sip"), NewDetector: detector,
			InvitesPerMinute: cfg.StreamsPerMinute, InvitesBurst: cfg.StreamsBurst}, a.serveLeg, log.Named("sip"))
		if err != nil {
			return nil, err
		}
	}
	var allow []netip.Prefix
	for _, p := range cfg.PlatformAllowFrom {
		allow = append(allow, netip.MustParsePrefix(p)) // validated in Config.finish
	}
	ast := asterisk.Config{Username: cfg.AsteriskUsername, Password: cfg.AsteriskPassword, AllowFrom: allow,
		DTMF: modeFor("asterisk"), NewDetector: detector}
	if err := ast.Validate(); err != nil {
		return nil, err
	}
	regKeys := cfg.RegistrationKeys
	if len(regKeys) == 0 {
		regKeys = cfg.AgentKeys
	}
	regCfg := audiosocket.RegistryConfig{Keys: regKeys}
	if err := regCfg.Validate(); err != nil {
		return nil, err
	}
	a.registry = audiosocket.NewRegistry(regCfg)
	if cfg.AudioSocket != "" {
		asCfg := audiosocket.Config{DTMF: modeFor("audiosocket"), NewDetector: detector, AllowFrom: allow, Lookup: a.registry.Lookup}
		if err := asCfg.Validate(); err != nil {
			return nil, err
		}
		a.audioSocket = audiosocket.NewServer(asCfg, a.serveLeg, log.Named("audiosocket"))
	}

	mux := http.NewServeMux()
	mux.Handle("GET /v1/twilio", a.admit(twilio.NewHandler(tw, a.serveLeg, log.Named("twilio"))))
	mux.Handle("POST /v1/twilio/voice", twilio.VoiceHandler(tw))
	mux.Handle("GET "+telnyx.StreamPath, a.admit(telnyx.NewHandler(tx, a.serveLeg, log.Named("telnyx"))))
	mux.Handle("GET "+vonage.StreamPath, a.admit(vh))
	mux.Handle("GET "+vonage.StreamPath+"/{token}", a.admit(vh))
	mux.Handle("GET "+jambonz.StreamPath, a.admit(jambonz.NewHandler(jb, a.serveLeg, log.Named("jambonz"))))
	mux.Handle("GET "+freeswitch.StreamPath, a.admit(freeswitch.NewHandler(fsw, a.serveLeg, log.Named("freeswitch"))))
	mux.Handle("POST "+webrtc.OfferPath, a.admit(a.webrtc))
	mux.Handle("DELETE "+webrtc.OfferPath+"/{id}", a.webrtc)
	phone := webrtc.PageHandler()
	mux.Handle("GET "+webrtc.PagePath, phone)
	mux.Handle("GET "+webrtc.ScriptPath, phone)
	mux.Handle("GET "+webrtc.StylePath, phone)
	mux.Handle("GET "+asterisk.Path, a.admit(asterisk.NewHandler(ast, a.serveLeg, log.Named("asterisk"))))
	mux.Handle("POST "+audiosocket.RegistryPath, audiosocket.RegistryHandler(a.registry, log.Named("audiosocket")))
	mux.Handle("GET /v1/agent", a.hub.Handler(cfg.AgentKeys))
	page := agent.PageHandler(agent.WithFrameAncestors(cfg.AgentFrameAncestors...),
		agent.WithTokenIssuer(a.signer.Config().Issuer, a.signer.Config().Audience))
	mux.Handle("/agent", page)
	mux.Handle("/agent/", page)
	mux.Handle("GET /.well-known/jwks.json", a.signer.JWKSHandler())
	if a.inbox != nil { // demo only: passcodes shown to whoever opens /phone on this machine
		mux.Handle("GET /v1/demo/inbox", loopbackOnly(a.inbox.InboxHandler()))
	}
	mux.Handle("POST /v1/tokens/redeem", token.RedeemHandler(a.signer, cfg.AgentKeys, a.replay,
		token.WithRedeemLogger(log.Named("redeem"))))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", a.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	a.handler = mux
	return a, nil
}

// Handler is the node's HTTP surface.
func (a *App) Handler() http.Handler { return a.handler }

// loopbackOnly serves h to requests from this machine only (the demo's passcode inbox).
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip, perr := netip.ParseAddr(host); err != nil || perr != nil || !ip.IsLoopback() {
			http.Error(w, "the demo inbox is served to this machine only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// admit refuses new calls while draining, and from a source address that starts streams
// faster than the configured rate.
func (a *App) admit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.draining.Load() {
			http.Error(w, "draining: not accepting new calls", http.StatusServiceUnavailable)
			return
		}
		if !a.limiter.AllowRemote(r.RemoteAddr) {
			a.metrics.rejected.WithLabelValues("rate_limited").Inc()
			w.Header().Set("Retry-After", "60")
			http.Error(w, "too many streams from this address", http.StatusTooManyRequests)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (a *App) ready(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if a.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "draining")
		return
	}
	if a.redis != nil {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := a.redis.Ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			if errors.Is(err, redis.ErrStateLost) {
				fmt.Fprintf(w, "redis restoring: it came back without its data; verification resumes once the nodes have written back what they hold (%v)\n", err)
				return
			}
			fmt.Fprintf(w, "redis unavailable: verification fails closed until it answers (%v)\n", err)
			return
		}
	}
	fmt.Fprintln(w, "ready")
}

// storeStatus tells this node's agents when verification stops or resumes with Redis.
func (a *App) storeStatus(st redis.Status) {
	node := a.cfg.NodeName
	if node == "" {
		node, _ = os.Hostname()
	}
	s := agent.Status{State: agent.StatusOK, Node: node, At: st.Since.UTC()}
	switch st.State {
	case redis.StateDown:
		s.State, s.Reason = agent.StatusDegraded, agent.ReasonStateStoreUnavailable
		s.Detail = "Verification is unavailable: this server cannot reach its state store (Redis). Callers hear a technical-difficulty message and nobody is verified."
	case redis.StateRestoring:
		s.State, s.Reason = agent.StatusDegraded, agent.ReasonStateStoreRestoring
		s.Detail = "Verification is paused: the state store (Redis) came back without its data and is being restored."
	}
	a.hub.SetStatus(s)
}

// serveLeg runs the flow on one leg; adapters call it in their own goroutine.
func (a *App) serveLeg(ctx context.Context, leg media.Leg) {
	a.calls.Add(1)
	defer a.calls.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(a.hard, cancel)
	defer stop()
	transport := leg.Info().Transport
	a.live.Add(1)
	a.metrics.live.WithLabelValues(transport).Inc()
	defer func() {
		a.live.Add(-1)
		a.metrics.live.WithLabelValues(transport).Dec()
	}()
	began := time.Now()
	res, _ := a.engine.Run(ctx, leg)
	outcome := res.Outcome
	if outcome == "" {
		outcome = res.Reason
	}
	a.metrics.calls.WithLabelValues(transport, outcome).Inc()
	if res.Outcome == "verified" || res.Outcome == "not_verified" || res.Outcome == "locked_out" {
		a.metrics.duration.WithLabelValues(res.Outcome).Observe(time.Since(began).Seconds())
	}
}

// pruneAudit drops records past their retention at start and daily after.
func (a *App) pruneAudit() {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		if n, err := a.audit.Prune(a.hard, time.Now()); err != nil {
			if a.hard.Err() == nil {
				a.log.Error("audit prune", zap.Error(err))
			}
		} else if n > 0 {
			a.log.Info("audit records past retention pruned", zap.Int("records", n))
		}
		select {
		case <-a.hard.Done():
			return
		case <-t.C:
		}
	}
}

// ListenSIP opens the SIP listeners (UDP and TCP on one port) when SIP is configured; call it
// before Serve. It returns the bound address, or nil when SIP is off.
func (a *App) ListenSIP() (net.Addr, error) {
	if a.sip == nil {
		return nil, nil
	}
	ln, err := net.Listen("tcp", a.cfg.SIP)
	if err != nil {
		return nil, fmt.Errorf("sip listen %s: %w", a.cfg.SIP, err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String()) // the same port for UDP
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("sip listen udp %s: %w", ln.Addr(), err)
	}
	a.sipTCP, a.sipUDP = ln, pc
	a.log.Info("sip listening", zap.String("addr", ln.Addr().String()))
	return ln.Addr(), nil
}

// ListenAudioSocket opens the AudioSocket listener when one is configured; call it before
// Serve. It returns the bound address, or nil when AudioSocket is off.
func (a *App) ListenAudioSocket() (net.Addr, error) {
	if a.audioSocket == nil {
		return nil, nil
	}
	ln, err := net.Listen("tcp", a.cfg.AudioSocket)
	if err != nil {
		return nil, fmt.Errorf("audiosocket listen %s: %w", a.cfg.AudioSocket, err)
	}
	a.asLn = ln
	a.log.Info("audiosocket listening", zap.String("addr", ln.Addr().String()))
	return ln.Addr(), nil
}

// Serve accepts on ln until ctx is cancelled (stop now) or the drain signal in ctx fires (stop
// accepting, let live calls finish up to the drain timeout). It returns nil on a clean stop.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          zap.NewStdLog(a.log.Named("http")),
	}
	errc := make(chan error, 2)
	if a.cfg.TLSCertFile != "" {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		go func() { errc <- srv.ServeTLS(ln, a.cfg.TLSCertFile, a.cfg.TLSKeyFile) }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	if a.crm != nil {
		if err := a.crm.Start(a.hard); err != nil {
			_ = srv.Close()
			<-errc
			a.Close()
			return fmt.Errorf("crm webhook: %w", err)
		}
	}
	go a.pruneAudit()
	a.forwarded = make(chan struct{})
	if a.auditSource != nil {
		go func() {
			defer close(a.forwarded)
			_ = audit.Forward(a.hard, a.auditSource, a.audit, a.log)
		}()
	} else {
		close(a.forwarded)
	}
	sipDone := make(chan error, 1)
	if a.sipTCP != nil {
		go func() { sipDone <- a.sip.Serve(a.hard, a.sipUDP, a.sipTCP) }()
	} else {
		sipDone <- nil
	}
	asDone := make(chan error, 1)
	if a.asLn != nil {
		go func() { asDone <- a.audioSocket.Serve(a.hard, a.asLn) }()
	} else {
		asDone <- nil
	}
	select {
	case err := <-errc:
		a.Close()
		<-asDone
		<-sipDone
		return err
	case <-ctx.Done():
	case <-drainSignal(ctx):
	}
	// Draining: new media streams, offers and INVITEs are refused (and /readyz says so, for
	// the load balancer), while the JWKS, the agent stream and redemption keep serving the
	// calls that are finishing. The HTTP listener closes once they are done.
	a.draining.Store(true)
	a.log.Info("draining", zap.Int64("live_calls", a.live.Load()), zap.Duration("deadline", a.cfg.DrainTimeout))
	if a.audioSocket != nil {
		go func() {
			dctx, cancel := context.WithTimeout(context.Background(), a.cfg.DrainTimeout)
			defer cancel()
			_ = a.audioSocket.Shutdown(dctx) // stop accepting; live calls drain with the others
		}()
	}
	if a.sipTCP != nil {
		go func() {
			dctx, cancel := context.WithTimeout(context.Background(), a.cfg.DrainTimeout)
			defer cancel()
			_ = a.sip.Shutdown(dctx) // new INVITEs get 503; live calls drain with the others
		}()
	}
	a.drain(ctx)
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = srv.Shutdown(shutCtx) // hijacked call sockets were ours to drain, and are done
	cancel()
	a.Close()
	<-asDone
	<-sipDone
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// drain waits for live calls until they end, the deadline passes or ctx is cancelled, then
// stops whatever is left.
func (a *App) drain(ctx context.Context) {
	done := make(chan struct{})
	go func() { a.calls.Wait(); close(done) }()
	deadline := time.NewTimer(a.cfg.DrainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			a.log.Info("drained")
			return
		case <-tick.C:
			a.log.Info("draining", zap.Int64("live_calls", a.live.Load()))
		case <-ctx.Done():
			a.hardCancel()
			<-done
			return
		case <-deadline.C:
			a.log.Warn("drain deadline passed; ending live calls", zap.Int64("live_calls", a.live.Load()))
			a.hardCancel()
			<-done
			return
		}
	}
}

// Close stops every live call and the agent hub. It is idempotent.
func (a *App) Close() {
	a.closeOnce.Do(func() {
		a.draining.Store(true)
		a.hardCancel()
		if a.audioSocket != nil {
			_ = a.audioSocket.Close()
		}
		_ = a.webrtc.Close()
		a.calls.Wait()
		if a.forwarded != nil {
			<-a.forwarded
		}
		a.hub.Close()
		if a.crm != nil {
			_ = a.crm.Close()
		}
		if a.crmQueue != nil {
			_ = a.crmQueue.Close()
		}
		if err := a.audit.Close(); err != nil {
			a.log.Error("audit log close", zap.Error(err))
		}
		if a.redis != nil {
			_ = a.redis.Close()
		}
	})
}

// loadOrCreateServerKey returns the node's HMAC key for hashing account and caller numbers
// before they reach a store, creating it on first start. Nodes sharing state must share it.
func loadOrCreateServerKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, "server-key")
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(key) < 32 {
			return nil, fmt.Errorf("server key %s: want 64 hex digits", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("server key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	return key, nil
}

// buildPolicies applies the configured overrides to the default CCPA policy table and
// validates the result (kba refuses tables below the regulation's minimums).
func buildPolicies(over map[string]PolicyConfig) (kba.Policies, error) {
	ps := kba.DefaultPolicies()
	for name, o := range over {
		req, err := kba.ParseRequest(name)
		if err != nil {
			return nil, fmt.Errorf("policies: %w", err)
		}
		p := ps[req]
		if o.Level != "" {
			p.Level = kba.Level(o.Level)
		}
		if o.Points != 0 {
			p.Points = o.Points
		}
		if o.Declaration != nil {
			p.Declaration = *o.Declaration
		}
		if len(o.Factors) > 0 {
			p.Factors = p.Factors[:0:0]
			for _, f := range o.Factors {
				p.Factors = append(p.Factors, kba.Factor(f))
			}
		}
		ps[req] = p
	}
	if err := ps.Validate(); err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	return ps, nil
}
