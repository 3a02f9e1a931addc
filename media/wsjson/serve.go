package wsjson

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
)

// Defaults shared by the adapters' configs.
const (
	DefaultReadLimit    = 64 << 10
	DefaultStartTimeout = 10 * time.Second
)

// CheckConfig checks the settings every JSON stream adapter has; zero values are defaults.
// The error describes the first problem; adapters wrap it in their own ErrConfig.
func CheckConfig(readLimit int64, startTimeout time.Duration, mode media.DTMFMode, hasDetector bool) error {
	switch {
	case readLimit < 0:
		return fmt.Errorf("read limit %d is negative", readLimit)
	case readLimit > 0 && readLimit < 1024:
		return fmt.Errorf("read limit %d is below 1024 bytes; a start message would not fit", readLimit)
	case readLimit > 16<<20:
		return fmt.Errorf("read limit %d is above 16 MiB", readLimit)
	case startTimeout < 0:
		return fmt.Errorf("start timeout %s is negative", startTimeout)
	case mode > media.DTMFInband:
		return fmt.Errorf("unknown dtmf mode %d", mode)
	case mode == media.DTMFInband && !hasDetector:
		return errors.New("dtmf mode inband needs NewDetector")
	}
	return nil
}

// NewUpgrader returns an upgrader with the adapters' handshake settings for connections used
// through gorilla/websocket's own methods (test servers): it reuses the buffered reader net/http
// read the request with, and keeps a small write buffer, since gorilla writes a larger message
// straight from the caller's slice in the same system call. Streams accepted by an Acceptor
// frame their messages themselves (see New).
func NewUpgrader() websocket.Upgrader {
	return websocket.Upgrader{HandshakeTimeout: 10 * time.Second, WriteBufferSize: 512}
}

// handshake is the Acceptor's upgrader: gorilla/websocket checks the request and answers it,
// then the stream takes the connection over. It allocates no write buffer (the stream writes
// through the shared pool) and reads the request through net/http's own reader; gorilla refuses
// a client that sent data before the handshake ended, so nothing is left in it afterwards.
var handshake = websocket.Upgrader{HandshakeTimeout: 10 * time.Second, WriteBufferPool: noBuffers{}}

// noBuffers keeps gorilla/websocket from allocating a write buffer for a connection it will
// never write a message on.
type noBuffers struct{}

func (noBuffers) Get() any { return nil }
func (noBuffers) Put(any)  {}

// ServeConfig describes how an adapter runs its streams.
type ServeConfig struct {
	// Name is the adapter's name, for log messages ("twilio stream started").
	Name string
	// StartTimeout bounds the wait for the dialect to report start; a stream that has not
	// started by then is closed with 1008.
	StartTimeout time.Duration
	// Serve runs the call flow on the leg.
	Serve func(ctx context.Context, leg media.Leg)
	// Stats, when set, returns the adapter's own end-of-call counters, logged after the
	// stream's.
	Stats func(leg media.Leg) []zap.Field
}

// Acceptor is the part of an adapter's stream handler that follows authentication: it refuses
// every stream while the adapter's config is invalid, upgrades, and runs each stream to its
// end.
type Acceptor struct {
	sc      ServeConfig
	err     error
	log     *zap.Logger
	streams sync.WaitGroup
}

// NewAcceptor returns an acceptor running streams as sc says. cfgErr is the adapter config's
// verdict (Validate); a nil log means zap.NewNop().
func NewAcceptor(sc ServeConfig, cfgErr error, log *zap.Logger) *Acceptor {
	if log == nil {
		log = zap.NewNop()
	}
	return &Acceptor{sc: sc, err: cfgErr, log: log}
}

// Log is the adapter's logger.
func (a *Acceptor) Log() *zap.Logger { return a.log }

// Refused answers 500 when the adapter's config is invalid, and reports whether it did.
func (a *Acceptor) Refused(w http.ResponseWriter) bool {
	if a.err == nil {
		return false
	}
	a.log.Error(a.sc.Name+" stream refused: invalid config", zap.Error(a.err))
	http.Error(w, "stream handler misconfigured", http.StatusInternalServerError)
	return true
}

// Accept upgrades r, which the adapter has authenticated, and runs the stream to its end on a
// goroutine of its own: open wraps the connection in the adapter's leg, with the cancel
// function of the call's context, and run does the rest. Accept returns once the stream is
// running, so that net/http's request, response and buffers (about 10 KiB) do not stay for the
// length of the call; Wait waits for the streams. The call's context keeps the request
// context's values, not its cancellation. An upgrade failure has already been answered by the
// upgrader.
func (a *Acceptor) Accept(w http.ResponseWriter, r *http.Request,
	open func(conn *websocket.Conn, cancel context.CancelFunc) (*Stream, media.Leg)) {
	conn, err := handshake.Upgrade(w, r, nil)
	if err != nil {
		a.log.Debug(a.sc.Name+" stream: upgrade failed", zap.Error(err))
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	s, leg := open(conn, cancel)
	s.usePoller(conn.NetConn())
	remote := r.RemoteAddr
	a.streams.Add(1)
	go func() {
		defer a.streams.Done()
		defer cancel()
		run(ctx, s, leg, a.sc, remote, a.log)
	}()
}

// Wait waits until every stream accepted so far has ended and been logged.
func (a *Acceptor) Wait() { a.streams.Wait() }

// run runs a stream to its end on the caller's goroutine: it starts the stream, waits for
// start (closing with 1008 after StartTimeout), logs the call's start, runs the flow on leg
// (the adapter's wrapper of s) with ctx, hangs up when the flow returns, and logs the end with
// the close status and counters. ctx must be the context whose cancel function the stream's
// Config carries; remote is the peer's address, logged when a stream ends before it started.
func run(ctx context.Context, s *Stream, leg media.Leg, sc ServeConfig, remote string, log *zap.Logger) {
	if log == nil {
		log = zap.NewNop()
	}
	s.base = log
	s.Run()
	began := time.Now()
	defer s.Close()

	timer := time.NewTimer(sc.StartTimeout)
	select {
	case <-s.started:
	case <-s.endCh:
	case <-timer.C:
		s.Fail(Violationf(ClosePolicy, "no start message within %s", sc.StartTimeout))
	}
	timer.Stop()
	st := s.Start()
	if st == nil {
		<-s.endCh
		s.Close()
		log.Warn(sc.Name+" stream ended before start", zap.String("remote", remote), zap.Error(s.Err()))
		return
	}
	log = s.Logger()
	log.Info(sc.Name+" stream started", zap.String("caller", media.MaskPhone(st.From)),
		zap.String("to", media.MaskPhone(st.To)), zap.String("verstat", st.Verstat))
	defer func() {
		s.Close()
		code, text := s.CloseStatus()
		st := s.Stats()
		fields := []zap.Field{zap.Duration("duration", time.Since(began)),
			zap.Int("close_code", code), zap.String("close_reason", text), zap.NamedError("reason", s.Err()),
			zap.Uint64("frames_in", st.FramesIn), zap.Uint64("frames_out", st.FramesOut), zap.Uint64("drops", st.Drops),
			zap.Uint64("marks_out", st.MarksOut), zap.Uint64("marks_in", st.MarksIn), zap.Uint64("clears", st.Clears),
			zap.Uint64("gaps", st.Gaps)}
		if sc.Stats != nil {
			fields = append(fields, sc.Stats(leg)...)
		}
		log.Info(sc.Name+" stream ended", fields...)
	}()
	if sc.Serve != nil {
		sc.Serve(ctx, leg)
	}
	_ = s.Hangup("done")
}
