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

// Store is Callproof's state in Redis, shared by every node that opens the same Redis with
// the same prefix. It implements sessions.Attempts, sessions.Replay, sessions.AgentLog and
// sessions.AgentWatcher, and is safe for concurrent use.
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

	indexKey    string // sorted set of calls by latest entry
	lastKey     string // the last event id handed out
	wakeChannel string // Pub/Sub notifications

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

// Open connects to Redis as cfg says and checks the connection with a PING, bounded by ctx
// and the dial and read timeouts. A nil log means zap.NewNop(). A bad cfg gives ErrBadConfig;
// an unreachable Redis an error wrapping sessions.ErrUnavailable.
func Open(ctx context.Context, cfg Config, log *zap.Logger, opts ...Option) (*Store, error) {
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
	}
	for _, opt := range opts {
		opt(s)
	}
	s.indexKey = s.prefix + "{agent}:calls"
	s.lastKey = s.prefix + "{agent}:last"
	s.wakeChannel = s.prefix + "agent:wake"
	s.rdb = goredis.NewUniversalClient(o)
	pctx, cancel := context.WithTimeout(ctx, o.DialTimeout+o.ReadTimeout)
	defer cancel()
	if err := s.rdb.Ping(pctx).Err(); err != nil {
		_ = s.rdb.Close()
		return nil, fmt.Errorf("redis: open %s %v: %w: %w", topo, o.Addrs, sessions.ErrUnavailable, err)
	}
	log.Info("redis connected", zap.String("topology", topo), zap.Strings("addrs", o.Addrs),
		zap.String("prefix", s.prefix), zap.Bool("tls", o.TLSConfig != nil))
	return s, nil
}

// Close closes the connections. Feeds from Watch should be closed first. Later calls return
// the first call's result; operations after Close fail with sessions.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
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
	if s.closed.Load() {
		return fmt.Errorf("redis %s: %w: %w", op, sessions.ErrUnavailable, sessions.ErrClosed)
	}
	return fmt.Errorf("redis %s: %w: %w", op, sessions.ErrUnavailable, err)
}

// isTimeout reports whether err is a read deadline passing (not a failure).
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
