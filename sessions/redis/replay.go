package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callproof/callproof/sessions"
)

var errShape = errors.New("unexpected reply shape")

// Consume implements sessions.Replay with SET NX PX: of any number of concurrent calls with
// one id, on any node, exactly one gets first. The marker expires at until (at least
// sessions.MinReplayTTL from now). Behind the epoch check (see guarded): when Redis lost its
// data, the answer is an error, never a first use of an id that may have been used before.
func (s *Store) Consume(ctx context.Context, id string, until time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := checkKey(id); err != nil {
		return false, err
	}
	now := s.now()
	ttl := max(until.Sub(now), sessions.MinReplayTTL)
	var cmd *goredis.BoolCmd
	err := s.guarded(ctx, "replay", func(p goredis.Pipeliner) {
		cmd = p.SetNX(ctx, s.prefix+"replay:"+id, 1, ttl.Round(time.Millisecond))
	})
	if cmd != nil && cmd.Err() == nil {
		s.mirror.consumed(id, until, now) // used, whatever the answer
	}
	if err != nil {
		return false, err
	}
	first, err := cmd.Result()
	if err != nil {
		return false, s.fail("replay", err)
	}
	return first, nil
}
