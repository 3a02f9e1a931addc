package redis

import (
	"context"
	"errors"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callproof/callproof/sessions"
)

// maxKeyLen bounds the subject keys and ids accepted (they are hashes, 64 hex digits).
const maxKeyLen = 512

// The attempt scripts. KEYS[1] is the failure counter and KEYS[2] the lock; both carry the
// subject's hash tag, so each script touches one Cluster slot and runs atomically. Each
// returns {locked (0|1), failures or the lock's value, lock ms left, counter, counter ms left}:
// the first three are the caller's answer, the last two what the mirror keeps. The lock's
// value is the failure count that set it (the rule's Max).
var (
	checkScript = goredis.NewScript(`
local left = redis.call('PTTL', KEYS[2])
local n = tonumber(redis.call('GET', KEYS[1])) or 0
local ttl = redis.call('PTTL', KEYS[1])
if left > 0 then
  return {1, tonumber(redis.call('GET', KEYS[2])) or 0, left, n, ttl}
end
return {0, n, 0, n, ttl}
`)

	// ARGV: max, window ms, lock ms. The window starts at the first failure; failures while
	// locked neither count nor extend the lock; reaching max locks and clears the counter.
	failScript = goredis.NewScript(`
local left = redis.call('PTTL', KEYS[2])
if left > 0 then
  local n = tonumber(redis.call('GET', KEYS[1])) or 0
  return {1, tonumber(redis.call('GET', KEYS[2])) or tonumber(ARGV[1]), left, n, redis.call('PTTL', KEYS[1])}
end
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return {1, tonumber(ARGV[1]), tonumber(ARGV[3]), 0, -2}
end
return {0, n, 0, n, redis.call('PTTL', KEYS[1])}
`)

	resetScript = goredis.NewScript(`return redis.call('DEL', KEYS[1], KEYS[2])`)
)

func (s *Store) attemptKeys(key string) []string {
	base := s.prefix + "attempts:{" + key + "}:"
	return []string{base + "fail", base + "lock"}
}

func checkKey(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return sessions.ErrBadKey
	}
	return nil
}

// Check implements sessions.Attempts. Like Fail, Reset and Consume it runs behind the epoch
// check (see guarded): an answer read from a Redis that lost its data is never given.
func (s *Store) Check(ctx context.Context, key string) (sessions.LockState, error) {
	if err := ctx.Err(); err != nil {
		return sessions.LockState{}, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := checkKey(key); err != nil {
		return sessions.LockState{}, err
	}
	var cmd *goredis.Cmd
	if err := s.guarded(ctx, "check", func(p goredis.Pipeliner) {
		cmd = checkScript.Eval(ctx, p, s.attemptKeys(key))
	}); err != nil {
		return sessions.LockState{}, err
	}
	r, err := s.attemptReply("check", cmd)
	if err != nil {
		return sessions.LockState{}, err
	}
	s.mirror.observe(key, r, s.now())
	return r.state(), nil
}

// Fail implements sessions.Attempts in one Lua script (atomic across nodes).
func (s *Store) Fail(ctx context.Context, key string, r sessions.Rule) (sessions.LockState, error) {
	if err := ctx.Err(); err != nil {
		return sessions.LockState{}, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := checkKey(key); err != nil {
		return sessions.LockState{}, err
	}
	if err := r.Validate(); err != nil {
		return sessions.LockState{}, err
	}
	var cmd *goredis.Cmd
	err := s.guarded(ctx, "fail", func(p goredis.Pipeliner) {
		cmd = failScript.Eval(ctx, p, s.attemptKeys(key), r.Max, ms(r.Window), ms(r.LockFor))
	})
	if err != nil {
		if errors.Is(err, ErrStateLost) && cmd != nil && cmd.Err() == nil {
			// The failure happened; Redis counted it on data it lost. Count it on what this
			// node holds, which is what it writes back.
			s.mirror.bump(key, r, s.now())
		}
		return sessions.LockState{}, err
	}
	rep, err := s.attemptReply("fail", cmd)
	if err != nil {
		return sessions.LockState{}, err
	}
	s.mirror.observe(key, rep, s.now())
	return rep.state(), nil
}

// Reset implements sessions.Attempts.
func (s *Store) Reset(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := checkKey(key); err != nil {
		return err
	}
	var cmd *goredis.Cmd
	if err := s.guarded(ctx, "reset", func(p goredis.Pipeliner) {
		cmd = resetScript.Eval(ctx, p, s.attemptKeys(key))
	}); err != nil {
		return err
	}
	if err := cmd.Err(); err != nil {
		return s.fail("reset", err)
	}
	s.mirror.forget(key)
	return nil
}

func (s *Store) attemptReply(op string, cmd *goredis.Cmd) (attemptReply, error) {
	v, err := cmd.Int64Slice()
	if err != nil {
		return attemptReply{}, s.fail(op, err)
	}
	if len(v) != 5 {
		return attemptReply{}, s.fail(op, errShape)
	}
	return attemptReply{locked: v[0] == 1, shown: v[1], lockLeft: time.Duration(v[2]) * time.Millisecond,
		failCount: v[3], failTTL: time.Duration(v[4]) * time.Millisecond}, nil
}

// ms renders d in whole milliseconds, at least 1.
func ms(d time.Duration) string {
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10)
}
