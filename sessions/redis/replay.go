package redis

import (
	"context"
	"errors"

	"time"

	"github.com/callproof/callproof/sessions"
)

var errShape = errors.New("unexpected reply shape")

// Consume implements sessions.Replay with SET NX PX: of any number of concurrent calls with
// one id, on any node, exactly one gets first. The marker expires at until (at least
// sessions.MinReplayTTL from now).
func (s *Store) Consume(ctx context.Context, id string, until time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := checkKey(id); err != nil {
		return false, err
	}
	ttl := max(until.Sub(s.now()), sessions.MinReplayTTL)
	first, err := s.rdb.SetNX(ctx, s.prefix+"replay:"+id, 1, ttl.Round(time.Millisecond)).Result()
	if err != nil {
		return false, s.fail("replay", err)
	}
	return first, nil
}
