package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/callproof/callproof/sessions"
)

// Defaults for the health and restore options.
const (
	// DefaultHealthInterval is how often a Store checks Redis.
	DefaultHealthInterval = 500 * time.Millisecond
	// DefaultRestoreGrace is how long every node refuses lockout and single-use operations
	// after one found that Redis lost its data: time for every node to notice and write back.
	DefaultRestoreGrace = 3 * time.Second
	// DefaultMirrorSize bounds the lockout states and the single-use ids a Store keeps.
	DefaultMirrorSize = 100_000

	// epochTTL is the epoch key's TTL, refreshed by every node's monitor.
	epochTTL = 7 * 24 * time.Hour
	// epochRefresh is how often a node refreshes it.
	epochRefresh = time.Minute
)

// State is what a Store knows of Redis.
type State int

// States.
const (
	// StateDown: Redis does not answer (or has not yet). Operations fail closed.
	StateDown State = iota
	// StateRestoring: Redis answers but lost its data, and the nodes are writing back what
	// they hold. Lockout and single-use operations fail closed with ErrStateLost.
	StateRestoring
	// StateUp: Redis answers and holds the data this node last saw.
	StateUp
)

func (st State) String() string {
	switch st {
	case StateUp:
		return "up"
	case StateRestoring:
		return "restoring"
	}
	return "down"
}

// Status is a Store's view of Redis.
type Status struct {
	State State
	// Err says why, when State is not StateUp. It names the operation and the cause (an
	// address, a refused connection), never a key or a value.
	Err error
	// Since is when State began.
	Since time.Time
}

// Status returns the Store's current view of Redis, as of its last check (at most the health
// interval old, or the last failed operation).
func (s *Store) Status() Status {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	return s.status
}

// OnStatus calls fn with the current Status now, and then with every change of State, from
// the Store's monitor goroutine, until Close. fn must not block or call back into the Store.
// It replaces an earlier fn.
func (s *Store) OnStatus(fn func(Status)) {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	s.onStatus = fn
	if fn != nil {
		fn(s.status)
	}
}

// setStatus records the outcome of a check, and tells the OnStatus callback about a change.
func (s *Store) setStatus(st State, err error) {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	if s.status.State == st {
		if err != nil {
			s.status.Err = err // the latest reason
		}
		return
	}
	prev, prevErr := s.status.State, s.status.Err
	s.status = Status{State: st, Err: err, Since: s.now()}
	switch {
	case st == StateUp && errors.Is(prevErr, errNotConnected):
	case st == StateUp:
		s.log.Info("redis available", zap.Stringer("was", prev))
	case s.closed.Load():
	case st == StateRestoring:
		s.log.Warn("redis lost its data: lockout and single-use operations fail closed while the nodes restore theirs",
			zap.Duration("grace", s.grace))
	default:
		s.log.Warn("redis unavailable: lockouts, single-use ids, records and agent delivery fail closed", zap.Error(err))
	}
	if s.onStatus != nil && !s.closed.Load() {
		s.onStatus(s.status)
	}
}

// Ready reports whether this node can verify callers on Redis now: Redis answers and holds the
// data the node last saw, and no restore is under way. Its error says why, for /readyz.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	epoch, left, err := s.readEpoch(ctx)
	if err != nil {
		return s.fail("ready", err)
	}
	if known := s.knownEpoch(); known == "" || epoch != known || left > 0 {
		s.checkNow()
		return fmt.Errorf("redis ready: %w: %w", sessions.ErrUnavailable, ErrStateLost)
	}
	return nil
}

// checkNow asks the monitor for a check without waiting for it.
func (s *Store) checkNow() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// monitor checks Redis every health interval, and at once when an operation failed, until
// Close.
func (s *Store) monitor() {
	defer close(s.monitorDone)
	t := time.NewTicker(s.healthEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		s.check(s.ctx)
	}
}

// check reads the epoch and the restoring flag, adopts or restores as needed, and records the
// Status.
func (s *Store) check(ctx context.Context) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	epoch, left, err := s.readEpoch(ctx)
	if err != nil {
		if s.ctx.Err() == nil {
			s.setStatus(StateDown, fmt.Errorf("redis check: %w: %w", sessions.ErrUnavailable, err))
		}
		return
	}
	known := s.knownEpoch()
	switch {
	case known == "":
		// This node never had Redis's data (it started while Redis was down): it holds nothing
		// to restore, but an epoch it has to create means Redis may have lost data that other
		// nodes hold, so it raises the restoring flag for them.
		if err := s.adopt(ctx, true); err != nil {
			s.setStatus(StateDown, err)
			return
		}
	case epoch != known:
		s.setStatus(StateRestoring, ErrStateLost)
		if err := s.restore(ctx); err != nil {
			s.log.Error("redis: restore after data loss failed; retrying", zap.Error(err))
			return
		}
	case left > 0:
		s.setStatus(StateRestoring, ErrStateLost)
		return
	default:
		s.refreshEpoch(ctx)
		s.setStatus(StateUp, nil)
		return
	}
	if _, left, err := s.readEpoch(ctx); err == nil && left <= 0 {
		s.setStatus(StateUp, nil)
	} else {
		s.setStatus(StateRestoring, ErrStateLost)
	}
}

func (s *Store) knownEpoch() string {
	s.epochMu.Lock()
	defer s.epochMu.Unlock()
	return s.epoch
}

// readEpoch returns the epoch Redis holds ("" if none) and how long the restoring flag still
// holds (zero or less: none).
func (s *Store) readEpoch(ctx context.Context) (string, time.Duration, error) {
	var get *goredis.StringCmd
	var pttl *goredis.DurationCmd
	_, _ = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, s.epochKey)
		pttl = p.PTTL(ctx, s.restoringKey)
		return nil
	})
	return epochReplies(get, pttl)
}

func epochReplies(get *goredis.StringCmd, pttl *goredis.DurationCmd) (string, time.Duration, error) {
	epoch, err := get.Result()
	if errors.Is(err, goredis.Nil) {
		epoch, err = "", nil
	}
	if err != nil {
		return "", 0, err
	}
	left, err := pttl.Result()
	if err != nil {
		return "", 0, err
	}
	return epoch, left, nil
}

// ensureScript returns the epoch, creating it when Redis has none. KEYS: epoch. ARGV: a new
// epoch, TTL ms. Returns {epoch, created (0|1)}.
var ensureScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {v, 0}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {ARGV[1], 1}
`)

// adopt makes Redis's epoch (created if it has none) the one this node trusts. With flag, a
// created epoch raises the restoring flag (see check).
func (s *Store) adopt(ctx context.Context, flag bool) error {
	epoch, created, err := s.ensureEpoch(ctx)
	if err != nil {
		return err
	}
	if created && flag {
		if err := s.raiseRestoring(ctx); err != nil {
			return err
		}
		s.log.Warn("redis holds no data of this deployment: other nodes get time to restore theirs",
			zap.Duration("grace", s.grace))
	}
	s.epochMu.Lock()
	s.epoch, s.epochSeen = epoch, s.now()
	s.epochMu.Unlock()
	return nil
}

func (s *Store) ensureEpoch(ctx context.Context) (string, bool, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	v, err := ensureScript.Run(ctx, s.rdb, []string{s.epochKey}, hex.EncodeToString(b[:]), ms(epochTTL)).Slice()
	if err != nil {
		return "", false, s.fail("epoch", err)
	}
	if len(v) != 2 {
		return "", false, s.fail("epoch", errShape)
	}
	epoch, _ := v[0].(string)
	created, _ := v[1].(int64)
	if epoch == "" {
		return "", false, s.fail("epoch", errShape)
	}
	return epoch, created == 1, nil
}

// refreshEpoch renews the epoch's TTL once a minute.
func (s *Store) refreshEpoch(ctx context.Context) {
	s.epochMu.Lock()
	due := s.now().Sub(s.epochSeen) >= epochRefresh
	if due {
		s.epochSeen = s.now()
	}
	s.epochMu.Unlock()
	if due {
		_ = s.rdb.PExpire(ctx, s.epochKey, epochTTL).Err()
	}
}

func (s *Store) raiseRestoring(ctx context.Context) error {
	if err := s.rdb.Set(ctx, s.restoringKey, "1", s.grace).Err(); err != nil {
		return s.fail("restoring", err)
	}
	return nil
}

// restore handles a Redis that lost its data: it raises the restoring flag (every node
// refuses lockout and single-use operations for the grace), writes back the lockout states,
// single-use ids and recent audit records this node holds, and then trusts the new epoch.
func (s *Store) restore(ctx context.Context) error {
	if err := s.raiseRestoring(ctx); err != nil {
		return err
	}
	epoch, _, err := s.ensureEpoch(ctx)
	if err != nil {
		return err
	}
	locks, ids, err := s.mirror.restore(ctx, s)
	if err != nil {
		return err
	}
	s.epochMu.Lock()
	audits := append([]*AuditStream(nil), s.audits...)
	s.epochMu.Unlock()
	records := 0
	for _, a := range audits {
		n, err := a.reappend(ctx)
		records += n
		if err != nil {
			return err
		}
	}
	s.epochMu.Lock()
	s.epoch, s.epochSeen = epoch, s.now()
	s.epochMu.Unlock()
	s.log.Error("redis lost its data (restart without persistence, flush or failover): wrote back what this node holds",
		zap.Int("lockout_states", locks), zap.Int("single_use_ids", ids), zap.Int("audit_records", records),
		zap.Uint64("mirror_dropped", s.mirror.dropped.Load()), zap.Duration("grace", s.grace))
	return nil
}

// guarded runs the commands queue adds in one pipeline behind a read of the epoch and the
// restoring flag: on one connection, so the commands see the same data as the read. Their
// replies are to be trusted only when guarded returns nil. Otherwise the error wraps
// sessions.ErrUnavailable, and ErrStateLost when Redis no longer holds the data this node last
// saw or a restore is under way; the commands may still have run.
func (s *Store) guarded(ctx context.Context, op string, queue func(p goredis.Pipeliner)) error {
	var get *goredis.StringCmd
	var pttl *goredis.DurationCmd
	_, _ = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, s.epochKey)
		pttl = p.PTTL(ctx, s.restoringKey)
		queue(p)
		return nil
	})
	epoch, left, err := epochReplies(get, pttl)
	if err != nil {
		return s.fail(op, err)
	}
	known := s.knownEpoch()
	if known == "" && epoch != "" && left <= 0 {
		// Started while Redis was down; other nodes kept the epoch: nothing was lost.
		s.epochMu.Lock()
		if s.epoch == "" {
			s.epoch, s.epochSeen = epoch, s.now()
		}
		known = s.epoch
		s.epochMu.Unlock()
	}
	if epoch != "" && epoch == known && left <= 0 {
		return nil
	}
	s.checkNow()
	return fmt.Errorf("redis %s: %w: %w", op, sessions.ErrUnavailable, ErrStateLost)
}
