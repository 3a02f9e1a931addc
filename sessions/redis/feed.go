package redis

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callproof/callproof/sessions"
)

const (
	// feedLookback is how far before Watch a feed starts reading calls it has no cursor for,
	// and how far before its previous catch-up each catch-up looks in the index: it covers
	// clock skew between nodes and Redis, and a publisher pausing between XADD and ZADD.
	feedLookback = 30 * time.Second
	// cursorGrace is kept beyond the idle expiry before a feed forgets a call's cursor (its
	// stream has expired by then).
	cursorGrace = time.Minute
)

// Watch implements sessions.AgentWatcher. The feed subscribes to the notification channel
// on its first Next and keeps, per call, the id of the last entry it handed out. A
// notification "<id> <call>" newer than that makes it read the call's stream from there
// (XRANGE); every WithCatchUp interval, and after each (re)subscription, it reads the index
// for calls appended to since its previous catch-up (less a 30 s margin) and reads those
// whose latest entry it has not handed out. So a lost notification delays a message by at
// most the catch-up interval, and a Redis outage by the time to reconnect; nothing is lost
// while the stream still holds it. A feed starts with calls appended up to 30 s before
// Watch. Watch does no I/O.
func (s *Store) Watch(ctx context.Context) (sessions.AgentFeed, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, sessions.ErrClosed
	}
	now := s.now()
	return &feed{
		s:        s,
		start:    sessions.EventID{Millis: now.Add(-feedLookback).UnixMilli()}.String(),
		cursors:  make(map[string]*cursor),
		lastScan: now,
		scanNow:  true,
		prunedAt: now,
	}, nil
}

type feed struct {
	s     *Store
	start string // first id read for a call without a cursor

	mu     sync.Mutex // guards ps and closed (Close may run concurrently with Next)
	ps     *goredis.PubSub
	closed bool

	// Owned by the goroutine calling Next.
	cursors  map[string]*cursor
	lastScan time.Time // start of the last complete catch-up
	nextScan time.Time
	scanNow  bool
	prunedAt time.Time
}

type cursor struct {
	id   sessions.EventID
	raw  string
	seen time.Time
}

var _ sessions.AgentFeed = (*feed)(nil)

// Next implements sessions.AgentFeed.
func (f *feed) Next(ctx context.Context) ([]sessions.AgentMessage, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ps, err := f.pubsub(ctx)
		if err != nil {
			return nil, err
		}
		if f.scanNow || !f.s.now().Before(f.nextScan) {
			msgs, err := f.catchUp(ctx)
			if err != nil {
				return nil, f.closedOr(err)
			}
			if len(msgs) > 0 {
				return msgs, nil
			}
		}
		wait := max(f.nextScan.Sub(f.s.now()), time.Millisecond)
		v, err := ps.ReceiveTimeout(ctx, wait)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if isTimeout(err) {
				continue
			}
			f.scanNow = true // the connection broke: notifications may have been lost
			return nil, f.closedOr(f.s.fail("watch", err))
		}
		switch v := v.(type) {
		case *goredis.Subscription:
			f.scanNow = true // (re)subscribed: catch up on what was published meanwhile
		case *goredis.Message:
			raw, call, ok := strings.Cut(v.Payload, " ")
			id, err := sessions.ParseEventID(raw)
			if !ok || err != nil || call == "" {
				continue
			}
			if c := f.cursors[call]; c != nil && id.Compare(c.id) <= 0 {
				continue // already handed out
			}
			msgs, err := f.read(ctx, call)
			if err != nil {
				f.scanNow = true
				return nil, f.closedOr(err)
			}
			if len(msgs) > 0 {
				return msgs, nil
			}
		}
	}
}

// pubsub returns the subscription, creating it on first use.
func (f *feed) pubsub(ctx context.Context) (*goredis.PubSub, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, sessions.ErrClosed
	}
	if f.ps == nil {
		// Errors surface on the first receive, which also reconnects and resubscribes.
		f.ps = f.s.rdb.Subscribe(ctx, f.s.wakeChannel)
		f.scanNow = true
	}
	return f.ps, nil
}

func (f *feed) closedOr(err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return sessions.ErrClosed
	}
	return err
}

// startFor is the XRANGE start for call: after its cursor, or the feed's start.
func (f *feed) startFor(call string) string {
	if c := f.cursors[call]; c != nil {
		return "(" + c.raw
	}
	return f.start
}

// read hands out call's entries after its cursor.
func (f *feed) read(ctx context.Context, call string) ([]sessions.AgentMessage, error) {
	ctx, cancel := f.s.bound(ctx)
	defer cancel()
	res, err := f.s.rdb.XRange(ctx, f.s.streamKey(call), f.startFor(call), "+").Result()
	if err != nil {
		return nil, f.s.fail("watch read", err)
	}
	return f.accept(call, res), nil
}

// accept advances call's cursor past entries and returns their messages.
func (f *feed) accept(call string, entries []goredis.XMessage) []sessions.AgentMessage {
	if len(entries) == 0 {
		return nil
	}
	last := entries[len(entries)-1].ID
	id, err := sessions.ParseEventID(last)
	if err != nil {
		return nil
	}
	f.cursors[call] = &cursor{id: id, raw: last, seen: f.s.now()}
	return f.s.decode(call, entries)
}

// catchUp reads the calls indexed since the previous catch-up (less the lookback) whose
// latest entry is newer than their cursor. If a batch fails after earlier ones were handed
// over, it returns those and catches up again on the next call.
func (f *feed) catchUp(ctx context.Context) ([]sessions.AgentMessage, error) {
	ctx, cancel := f.s.bound(ctx)
	defer cancel()
	began := f.s.now()
	zs, err := f.s.rdb.ZRangeByScoreWithScores(ctx, f.s.indexKey, &goredis.ZRangeBy{
		Min: strconv.FormatInt(f.lastScan.Add(-feedLookback).UnixMilli(), 10), Max: "+inf"}).Result()
	if err != nil {
		f.scanNow = true
		return nil, f.s.fail("watch catch-up", err)
	}
	var todo []string
	for _, z := range zs {
		call, ok := z.Member.(string)
		if !ok {
			continue
		}
		if c := f.cursors[call]; c != nil && int64(z.Score) < c.id.Millis {
			continue // nothing newer than what was handed out
		}
		todo = append(todo, call)
	}
	var out []sessions.AgentMessage
	for batch := range slices.Chunk(todo, pipelineBatch) {
		cmds := make([]*goredis.XMessageSliceCmd, len(batch))
		_, err := f.s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, call := range batch {
				cmds[i] = p.XRange(ctx, f.s.streamKey(call), f.startFor(call), "+")
			}
			return nil
		})
		if err != nil {
			f.scanNow = true
			if len(out) > 0 {
				return out, nil
			}
			return nil, f.s.fail("watch catch-up", err)
		}
		for i, cmd := range cmds {
			out = append(out, f.accept(batch[i], cmd.Val())...)
		}
	}
	f.lastScan, f.scanNow, f.nextScan = began, false, began.Add(f.s.catchUp)
	if began.Sub(f.prunedAt) >= indexPruneEvery {
		f.prunedAt = began
		for call, c := range f.cursors {
			if began.Sub(c.seen) > f.s.idle+cursorGrace {
				delete(f.cursors, call)
			}
		}
	}
	return out, nil
}

// Close implements sessions.AgentFeed.
func (f *feed) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	if f.ps != nil {
		_ = f.ps.Close()
	}
	return nil
}
