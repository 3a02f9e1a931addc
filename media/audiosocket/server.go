package audiosocket

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/callproof/callproof/media"
)

// Server accepts AudioSocket connections from Asterisk and runs each as a Leg.
type Server struct {
	cfg   Config
	err   error // Validate's verdict on the config
	serve func(ctx context.Context, leg media.Leg)
	log   *zap.Logger

	base       context.Context // cancelled by Close: every call ends
	baseCancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     sync.WaitGroup // connection goroutines; Add only under mu while !closed

	live      atomic.Int64
	refused   atomic.Uint64
	refuseLog rate.Sometimes
}

// NewServer returns an AudioSocket server. For every call whose UUID frame arrives, serve runs
// with the leg and a context cancelled when the call ends or the server stops; the leg is hung
// up when serve returns. cfg should have passed Validate: Serve returns Validate's error
// otherwise. A nil log means zap.NewNop().
func NewServer(cfg Config, serve func(ctx context.Context, leg media.Leg), log *zap.Logger) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	base, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:        cfg.withDefaults(),
		err:        cfg.Validate(),
		serve:      serve,
		log:        log,
		base:       base,
		baseCancel: cancel,
		listeners:  map[net.Listener]struct{}{},
		refuseLog:  rate.Sometimes{Interval: 10 * time.Second},
	}
}

// Live returns the number of connections being served.
func (s *Server) Live() int64 { return s.live.Load() }

// Refused returns the number of connections refused because of Config.AllowFrom.
func (s *Server) Refused() uint64 { return s.refused.Load() }

// Serve accepts connections on ln until ctx is cancelled, Close or Shutdown is called, or ln
// fails, serving each connection in its own goroutines. It closes ln and returns once every
// connection it accepted has finished: cancelling ctx ends those calls at once, Shutdown lets
// them finish. It returns nil on a clean stop and the listener's error otherwise. Serve may
// run on several listeners at once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.err != nil {
		_ = ln.Close()
		return s.err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopBase := context.AfterFunc(s.base, cancel)
	defer stopBase()
	stopLn := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stopLn()

	var mine sync.WaitGroup // this listener's connections
	defer mine.Wait()       // runs after cancel only when Serve's own ctx ended
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || s.isClosed() {
				return nil
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() { // EMFILE and friends: back off as net/http does
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("audiosocket accept failed; retrying", zap.Error(err), zap.Duration("delay", delay))
				select {
				case <-time.After(delay):
				case <-ctx.Done():
				}
				continue
			}
			cancel() // the listener is gone: end its calls rather than wait for them
			_ = ln.Close()
			return err
		}
		delay = 0
		if !allowed(s.cfg.AllowFrom, conn.RemoteAddr()) {
			n := s.refused.Add(1)
			s.refuseLog.Do(func() {
				s.log.Warn("audiosocket connection refused: address not in allow-from",
					zap.String("remote", conn.RemoteAddr().String()), zap.Uint64("refused_total", n))
			})
			_ = conn.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = conn.Close()
			return nil
		}
		s.conns.Add(1)
		mine.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.conns.Done()
			defer mine.Done()
			s.handle(ctx, conn)
		}()
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// stopAccepting marks the server closed and closes its listeners.
func (s *Server) stopAccepting() {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	s.mu.Unlock()
}

// Shutdown stops accepting and waits for live calls to end on their own. When ctx is done
// first, it ends them (as Close does) and returns ctx's error once they have finished.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.baseCancel()
		<-done
		return ctx.Err()
	}
}

// Close stops accepting, hangs up every live call and waits for their goroutines. It is
// idempotent and safe to call concurrently with Serve.
func (s *Server) Close() error {
	s.stopAccepting()
	s.baseCancel()
	s.conns.Wait()
	return nil
}

// handle serves one connection: it reads the UUID frame, looks the call up, then runs the leg.
func (s *Server) handle(ctx context.Context, conn net.Conn) {
	s.live.Add(1)
	defer s.live.Add(-1)
	remote := conn.RemoteAddr().String()
	l := newLeg(conn, &s.cfg)

	_ = conn.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
	unblock := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) }) // stopping: stop waiting
	kind, p, err := l.fr.next()
	if !unblock() {
		s.log.Debug("audiosocket connection closed before its UUID: server stopping", zap.String("remote", remote))
		_ = conn.Close()
		return
	}
	if err == nil {
		err = checkFrame(kind, p, true)
	}
	if err != nil {
		var pe *protoError
		if errors.As(err, &pe) {
			_ = conn.SetWriteDeadline(time.Now().Add(closeGrace))
			_, _ = conn.Write(hangupFrame[:])
			s.log.Warn("audiosocket connection refused: protocol error", zap.String("remote", remote), zap.String("reason", pe.msg))
		} else {
			s.log.Warn("audiosocket connection ended before its UUID", zap.String("remote", remote), zap.Error(err))
		}
		_ = conn.Close()
		return
	}
	var u [16]byte
	copy(u[:], p)
	l.uuid = FormatUUID(u)

	st, registered := s.lookup(ctx, l.uuid)
	l.st = st
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.cancel = cancel
	log := s.log.With(zap.String("call", st.CallID))
	l.rx.Start(st)
	go l.readLoop()
	go l.writeLoop()
	stop := context.AfterFunc(ctx, func() { _ = l.Hangup("server stopping") })
	defer stop()

	began := time.Now()
	log.Info("audiosocket call started", zap.String("uuid", l.uuid), zap.String("remote", remote),
		zap.Bool("registered", registered), zap.String("caller", media.MaskPhone(st.From)),
		zap.String("to", media.MaskPhone(st.To)), zap.String("verstat", st.Verstat))
	defer func() {
		_ = l.Close()
		stats := l.Stats()
		l.mu.Lock()
		reason := l.reason
		l.mu.Unlock()
		level := zap.InfoLevel
		if err := l.rx.Err(); errors.Is(err, media.ErrProtocol) || errors.Is(err, ErrIdle) {
			level = zap.WarnLevel // the peer misbehaved or went silent
		}
		log.Log(level, "audiosocket call ended", zap.Duration("duration", time.Since(began)),
			zap.NamedError("reason", l.rx.Err()), zap.String("hangup_reason", reason),
			zap.Uint64("frames_in", stats.FramesIn), zap.Uint64("frames_out", stats.FramesOut),
			zap.Uint64("marks", stats.Marks), zap.Uint64("clears", stats.Clears),
			zap.Uint64("drops", stats.Drops), zap.Uint64("late", stats.Late))
	}()
	if s.serve != nil {
		s.serve(callCtx, l)
	}
	_ = l.Hangup("done")
}

// lookup returns the call's Start: Config.Lookup's answer when it has one, else a Start whose
// CallID is the UUID. The Start is a copy the leg owns.
func (s *Server) lookup(ctx context.Context, id string) (*media.Start, bool) {
	st := &media.Start{CallID: id, StreamID: id, Transport: "audiosocket", Params: map[string]string{}}
	if s.cfg.Lookup == nil {
		return st, false
	}
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	got, ok := s.cfg.Lookup(lctx, id)
	if !ok || got == nil {
		return st, false
	}
	if got.CallID != "" {
		st.CallID = got.CallID
	}
	st.From, st.To, st.Verstat = got.From, got.To, got.Verstat
	for k, v := range got.Params {
		st.Params[k] = v
	}
	return st, true
}
