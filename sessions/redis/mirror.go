package redis

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callproof/callproof/sessions"
)

// mirror is what this node last saw of the lockout state of each subject it touched, and the
// single-use ids it consumed, until they expire: the copy it writes back when Redis comes back
// without its data. Keys are the hashed subject keys and ids the store receives; nothing is
// written to disk.
type mirror struct {
	max     int
	dropped atomic.Uint64 // entries evicted because the mirror was full

	mu       sync.Mutex
	attempts map[string]lockEntry
	replay   map[string]time.Time // id -> until
	swept    time.Time
}

// lockEntry is one subject's state: a failure counter and its window's end, and a lock (its
// value, the failures that set it) and its end. Zero times mean none.
type lockEntry struct {
	failures  int64
	failUntil time.Time
	lockVal   int64
	lockUntil time.Time
}

func (e lockEntry) expiry() time.Time {
	if e.lockUntil.After(e.failUntil) {
		return e.lockUntil
	}
	return e.failUntil
}

func newMirror(max int) *mirror {
	return &mirror{max: max, attempts: make(map[string]lockEntry), replay: make(map[string]time.Time)}
}

// attemptReply is what the attempt scripts return: the lock state shown to callers, and the
// counter as it stands, for the mirror.
type attemptReply struct {
	locked    bool
	shown     int64         // failures, or the lock's value when locked
	lockLeft  time.Duration // when locked
	failCount int64
	failTTL   time.Duration // <= 0: no counter
}

func (r attemptReply) state() sessions.LockState {
	st := sessions.LockState{Failures: int(r.shown)}
	if r.locked {
		st.Locked, st.RetryAfter = true, r.lockLeft
	}
	return st
}

// observe records what Redis said about key at now (the latest observation wins).
func (m *mirror) observe(key string, r attemptReply, now time.Time) {
	var e lockEntry
	if r.failCount > 0 && r.failTTL > 0 {
		e.failures, e.failUntil = r.failCount, now.Add(r.failTTL)
	}
	if r.locked && r.lockLeft > 0 {
		e.lockVal, e.lockUntil = r.shown, now.Add(r.lockLeft)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.expiry().IsZero() {
		delete(m.attempts, key)
		return
	}
	if _, ok := m.attempts[key]; !ok {
		m.make(now, false)
	}
	m.attempts[key] = e
}

// bump counts one failure of key that Redis took while it was losing its data, as the rule
// would have counted it on the state this node saw.
func (m *mirror) bump(key string, rule sessions.Rule, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.attempts[key]
	if e.lockUntil.After(now) {
		return // failures while locked do not count
	}
	if !e.failUntil.After(now) {
		e = lockEntry{failUntil: now.Add(rule.Window)}
	}
	e.failures++
	if e.failures >= int64(rule.Max) {
		e = lockEntry{lockVal: int64(rule.Max), lockUntil: now.Add(rule.LockFor)}
	}
	if !ok {
		m.make(now, false)
	}
	m.attempts[key] = e
}

func (m *mirror) forget(key string) {
	m.mu.Lock()
	delete(m.attempts, key)
	m.mu.Unlock()
}

func (m *mirror) consumed(id string, until, now time.Time) {
	until = maxTime(until, now.Add(sessions.MinReplayTTL))
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.replay[id]; !ok {
		m.make(now, true)
	}
	m.replay[id] = until
}

// make frees room for one entry in the attempts map, or with ids the replay map: expired
// entries go first (swept at most once a second), then arbitrary ones, counted in dropped.
// m.mu is held.
func (m *mirror) make(now time.Time, ids bool) {
	if (ids && len(m.replay) < m.max) || (!ids && len(m.attempts) < m.max) {
		return
	}
	if now.Sub(m.swept) >= time.Second {
		m.swept = now
		maps.DeleteFunc(m.attempts, func(_ string, e lockEntry) bool { return !e.expiry().After(now) })
		maps.DeleteFunc(m.replay, func(_ string, until time.Time) bool { return !until.After(now) })
	}
	if ids {
		evict(m.replay, m.max, &m.dropped)
	} else {
		evict(m.attempts, m.max, &m.dropped)
	}
}

func evict[V any](m map[string]V, max int, dropped *atomic.Uint64) {
	for k := range m {
		if len(m) < max {
			return
		}
		delete(m, k)
		dropped.Add(1)
	}
}

// restoreScript writes back one subject's state, never lowering what Redis has now (another
// node, or a call since, may have written more). KEYS: counter, lock. ARGV: failures, counter
// TTL ms (0: none), lock value, lock TTL ms (0: none).
var restoreScript = goredis.NewScript(`
local lockMs = tonumber(ARGV[4])
if lockMs > 0 and redis.call('PTTL', KEYS[2]) < lockMs then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', lockMs)
end
local failMs = tonumber(ARGV[2])
if failMs > 0 and (tonumber(redis.call('GET', KEYS[1])) or 0) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', failMs)
end
return 1
`)

// restore writes back every entry that has not expired, in pipelined batches, and returns how
// many of each kind it wrote.
func (m *mirror) restore(ctx context.Context, s *Store) (locks, ids int, err error) {
	now := s.now()
	m.mu.Lock()
	attempts := maps.Clone(m.attempts)
	replay := maps.Clone(m.replay)
	m.mu.Unlock()
	keys := slices.Collect(maps.Keys(attempts))
	for batch := range slices.Chunk(keys, pipelineBatch) {
		if err := s.pipelined(ctx, func(p goredis.Pipeliner) {
			for _, k := range batch {
				e := attempts[k]
				failMs, lockMs := left(e.failUntil, now), left(e.lockUntil, now)
				if failMs == 0 && lockMs == 0 {
					continue
				}
				restoreScript.Eval(ctx, p, s.attemptKeys(k), e.failures, failMs, e.lockVal, lockMs)
				locks++
			}
		}); err != nil {
			return locks, ids, s.fail("restore attempts", err)
		}
	}
	idList := slices.Collect(maps.Keys(replay))
	for batch := range slices.Chunk(idList, pipelineBatch) {
		if err := s.pipelined(ctx, func(p goredis.Pipeliner) {
			for _, id := range batch {
				if ms := left(replay[id], now); ms > 0 {
					p.SetNX(ctx, s.prefix+"replay:"+id, 1, time.Duration(ms)*time.Millisecond)
					ids++
				}
			}
		}); err != nil {
			return locks, ids, s.fail("restore replay", err)
		}
	}
	return locks, ids, nil
}

// pipelined runs one bounded pipeline and returns its first error.
func (s *Store) pipelined(ctx context.Context, queue func(p goredis.Pipeliner)) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error { queue(p); return nil })
	return err
}

// left is the whole milliseconds from now to t, or 0 when t has passed.
func left(t, now time.Time) int64 {
	if !t.After(now) {
		return 0
	}
	return max(t.Sub(now).Milliseconds(), 1)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
