package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/callproof/callproof/sessions"
)

// Defaults for Options.
const (
	// DefaultCatchUp is how often a feed reads the index for appends whose notification it
	// missed.
	DefaultCatchUp = time.Second
)

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock (default time.Now): the time stamp of agent messages without
// one, replay TTLs (until minus now) and the feed's catch-up schedule.
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// WithRetention sets how long an ended call's agent log is kept (default
// sessions.DefaultRetention).
func WithRetention(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.retention = d
		}
	}
}

// WithIdleExpiry sets how long the agent log of a call that never ended is kept after its
// last message (default sessions.DefaultIdleExpiry).
func WithIdleExpiry(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.idle = d
		}
	}
}

// WithMaxMessagesPerCall caps one call's agent log (XADD MAXLEN; default
// sessions.DefaultMaxMessagesPerCall). The oldest entries of a longer log are dropped.
func WithMaxMessagesPerCall(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.maxPerCall = int64(n)
		}
	}
}

// WithMaxReplayCalls caps how many calls (the most recently active) a replay of every call
// reads (default sessions.DefaultMaxCalls).
func WithMaxReplayCalls(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.maxReplayCalls = int64(n)
		}
	}
}

// WithCatchUp sets how often feeds catch up on missed notifications (default
// DefaultCatchUp). It bounds how late a message whose notification was lost arrives.
func WithCatchUp(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.catchUp = d
		}
	}
}

// WithHealthInterval sets how often the Store checks that Redis answers and still holds its
// data (default DefaultHealthInterval). Operations that fail also start a check at once.
func WithHealthInterval(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.healthEvery = d
		}
	}
}

// WithRestoreGrace sets how long, after a node found that Redis lost its data, every node
// refuses lockout and single-use operations while the nodes write back what they hold
// (default DefaultRestoreGrace). It must exceed the health interval of every node.
func WithRestoreGrace(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.grace = d
		}
	}
}

// WithMirrorSize bounds the lockout states, and separately the single-use ids, that the
// Store keeps in memory to write back when Redis loses its data (default DefaultMirrorSize).
func WithMirrorSize(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.mirror = newMirror(n)
		}
	}
}

// Store is Callproof's state in Redis, shared by every node that opens the same Redis with
// the same prefix. It implements sessions.Attempts, sessions.Replay, sessions.AgentLog and
// sessions.AgentWatcher, and is safe for concurrent use.
//
// Once connected, a Store watches Redis (see Status) and notices when Redis came back without
// its data; it then writes back the lockout states and single-use ids it holds and refuses
// lockout and single-use operations until every node has had the time to do the same (see
// the package documentation, "When Redis loses its data").
type Store struct {
	rdb            goredis.UniversalClient
	log            *zap.Logger
	prefix         string
	topology       string
	now            func() time.Time
	retention      time.Duration
	idle           time.Duration
	maxPerCall     int64
	maxReplayCalls int64
	catchUp        time.Duration
	opTimeout      time.Duration // bounds every operation
	sealer         *tokenSealer  // WithSealKey: agent log tokens sealed at rest
	addrs          []string      // for logs and errors
	tls            bool

	indexKey     string // sorted set of calls by latest entry
	lastKey      string // the last event id handed out
	wakeChannel  string // Pub/Sub notifications
	epochKey     string // this Redis's data generation (see epoch.go)
	restoringKey string // present while nodes write back what Redis lost

	healthEvery time.Duration
	grace       time.Duration
	mirror      *mirror

	epochMu   sync.Mutex
	epoch     string         // the generation this node trusts; "" before the first contact
	audits    []*AuditStream // re-appended after a loss
	epochSeen time.Time      // when the epoch's TTL was last refreshed

	statusMu sync.Mutex
	status   Status
	onStatus func(Status)

	ctx         context.Context // cancelled by Close: bounds the monitor's work
	cancel      context.CancelFunc
	kick        chan struct{} // cap 1: check Redis now
	monitorOnce sync.Once
	monitorDone chan struct{} // closed when the monitor has exited (or never started)

	prunedAt  atomic.Int64 // unix ms of the last index prune
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var (
	_ sessions.Attempts     = (*Store)(nil)
	_ sessions.Replay       = (*Store)(nil)
	_ sessions.AgentLog     = (*Store)(nil)
	_ sessions.AgentWatcher = (*Store)(nil)
)

// Open connects to Redis as cfg says and checks the connection (New, then Connect), bounded by
// ctx and the dial and read timeouts. A nil log means zap.NewNop(). A bad cfg gives
// ErrBadConfig; an unreachable Redis an error wrapping sessions.ErrUnavailable.
func Open(ctx context.Context, cfg Config, log *zap.Logger, opts ...Option) (*Store, error) {
	s, err := New(cfg, log, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.Connect(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// New returns a Store for cfg without touching the network: go-redis connects on first use
// and reconnects by itself. Call Connect once before use. A nil log means zap.NewNop(). Only a
// bad cfg is an error (ErrBadConfig).
func New(cfg Config, log *zap.Logger, opts ...Option) (*Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	o, topo, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	s := &Store{
		log:            log,
		prefix:         cfg.prefix(),
		topology:       topo,
		now:            time.Now,
		retention:      sessions.DefaultRetention,
		idle:           sessions.DefaultIdleExpiry,
		maxPerCall:     sessions.DefaultMaxMessagesPerCall,
		maxReplayCalls: sessions.DefaultMaxCalls,
		catchUp:        DefaultCatchUp,
		opTimeout:      o.DialTimeout + o.ReadTimeout + o.WriteTimeout,
		healthEvery:    DefaultHealthInterval,
		grace:          DefaultRestoreGrace,
		mirror:         newMirror(DefaultMirrorSize),
		kick:           make(chan struct{}, 1),
		monitorDone:    make(chan struct{}),
		status:         Status{State: StateDown, Err: errNotConnected},
	}
	for _, opt := range opts {
		opt(s)
	}
	s.status.Since = s.now()
	s.indexKey = s.prefix + "{agent}:calls"
	s.lastKey = s.prefix + "{agent}:last"
	s.wakeChannel = s.prefix + "agent:wake"
	s.epochKey = s.prefix + "epoch"
	s.restoringKey = s.prefix + "restoring"
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.rdb = goredis.NewUniversalClient(o)
	s.addrs, s.tls = o.Addrs, o.TLSConfig != nil
	return s, nil
}

// Connect makes the first contact with Redis, bounded by ctx and the dial and read timeouts,
// and starts the Store's health monitor (stopped by Close). An error wraps
// sessions.ErrUnavailable; the Store stays usable and its operations work, failing closed,
// once Redis answers. At this first contact a Redis without an epoch is taken as fresh: if it
// lost its data, the nodes already running notice and restore (see the package
// documentation).
func (s *Store) Connect(ctx context.Context) error {
	defer s.monitorOnce.Do(func() { go s.monitor() })
	if s.closed.Load() {
		return s.fail("connect", sessions.ErrClosed)
	}
	pctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	if err := s.rdb.Ping(pctx).Err(); err != nil {
		err = fmt.Errorf("redis: open %s %v: %w: %w", s.topology, s.addrs, sessions.ErrUnavailable, err)
		s.setStatus(StateDown, err)
		return err
	}
	if err := s.adopt(pctx, false); err != nil {
		s.setStatus(StateDown, err)
		return err
	}
	s.setStatus(StateUp, nil)
	s.log.Info("redis connected", zap.String("topology", s.topology), zap.Strings("addrs", s.addrs),
		zap.String("prefix", s.prefix), zap.Bool("tls", s.tls))
	return nil
}

// Close closes the connections. Feeds from Watch should be closed first. Later calls return
// the first call's result; operations after Close fail with sessions.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.cancel()
		s.monitorOnce.Do(func() { close(s.monitorDone) }) // never started
		<-s.monitorDone
		s.closeErr = s.rdb.Close()
	})
	return s.closeErr
}

// Ping checks that Redis answers (every shard, on Cluster), for readiness probes. Its error
// wraps sessions.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var err error
	if cc, ok := s.rdb.(*goredis.ClusterClient); ok {
		err = cc.ForEachShard(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.Ping(ctx).Err()
		})
	} else {
		err = s.rdb.Ping(ctx).Err()
	}
	if err != nil {
		return s.fail("ping", err)
	}
	return nil
}

// bound derives the context of one operation: ctx, cut at the operation timeout.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opTimeout)
}

// fail wraps a Redis error so that it matches sessions.ErrUnavailable (and still the cause,
// such as context.Canceled). Messages name the operation, never a key or a value.
func (s *Store) fail(op string, err error) error {
	if errors.Is(err, sessions.ErrUnavailable) {
		return err
	}
	if s.closed.Load() {
		return fmt.Errorf("redis %s: %w: %w", op, sessions.ErrUnavailable, sessions.ErrClosed)
	}
	s.checkNow()
	return fmt.Errorf("redis %s: %w: %w", op, sessions.ErrUnavailable, err)
}

// isTimeout reports whether err is a read deadline passing (not a failure).
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
