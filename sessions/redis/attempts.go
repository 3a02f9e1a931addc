package redis

import (
	"context"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callproof/callproof/sessions"
)

// maxKeyLen bounds the subject keys and ids accepted (they are hashes, 64 hex digits).
const maxKeyLen = 512

// The attempt scripts. KEYS[1] is the failure counter and KEYS[2] the lock; both carry the
// subject's hash tag, so each script touches one Cluster slot and runs atomically. Each
// returns {locked (0|1), failures, lock ms left}. The lock's value is the failure count that
// set it (the rule's Max).
var (
	checkScript = goredis.NewScript(`
local left = redis.call('PTTL', KEYS[2])
if left > 0 then
  return {1, tonumber(redis.call('GET', KEYS[2])) or 0, left}
end
return {0, tonumber(redis.call('GET', KEYS[1])) or 0, 0}
`)

	// ARGV: max, window ms, lock ms. The window starts at the first failure; failures while
	// locked neither count nor extend the lock; reaching max locks and clears the counter.
	failScript = goredis.NewScript(`
local left = redis.call('PTTL', KEYS[2])
if left > 0 then
  return {1, tonumber(redis.call('GET', KEYS[2])) or tonumber(ARGV[1]), left}
end
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return {1, tonumber(ARGV[1]), tonumber(ARGV[3])}
end
return {0, n, 0}
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

// Check implements sessions.Attempts.
func (s *Store) Check(ctx context.Context, key string) (sessions.LockState, error) {
	if err := ctx.Err(); err != nil {
		return sessions.LockState{}, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := checkKey(key); err != nil {
		return sessions.LockState{}, err
	}
	return s.lockState("check", checkScript.Run(ctx, s.rdb, s.attemptKeys(key)))
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
	return s.lockState("fail", failScript.Run(ctx, s.rdb, s.attemptKeys(key),
		r.Max, ms(r.Window), ms(r.LockFor)))
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
	if err := resetScript.Run(ctx, s.rdb, s.attemptKeys(key)).Err(); err != nil {
		return s.fail("reset", err)
	}
	return nil
}

func (s *Store) lockState(op string, cmd *goredis.Cmd) (sessions.LockState, error) {
	v, err := cmd.Int64Slice()
	if err != nil {
		return sessions.LockState{}, s.fail(op, err)
	}
	if len(v) != 3 {
		return sessions.LockState{}, s.fail(op, errShape)
	}
	st := sessions.LockState{Failures: int(v[1])}
	if v[0] == 1 {
		st.Locked, st.RetryAfter = true, time.Duration(v[2])*time.Millisecond
	}
	return st, nil
}

// ms renders d in whole milliseconds, at least 1.
func ms(d time.Duration) string {
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10)
}
