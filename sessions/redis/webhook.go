package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callproof/callproof/sessions/webhook"
)

// WebhookQueue keeps the CRM webhook's deliveries in Redis, so any node can deliver what any
// node queued and a node that dies loses none. Deliveries are stored as the dispatcher gives
// them (bodies sealed when the dispatcher has a seal key: a token never sits in Redis in
// clear). All keys share one hash tag so each script runs on one Cluster slot.
type WebhookQueue struct {
	s                                 *Store
	items, due, leased, dead, counter string
}

var _ webhook.Queue = (*WebhookQueue)(nil)

// WebhookQueue returns the deployment's CRM delivery queue.
func (s *Store) WebhookQueue() *WebhookQueue {
	p := s.prefix + "{webhook}:"
	return &WebhookQueue{s: s, items: p + "items", due: p + "due", leased: p + "leased", dead: p + "dead", counter: p + "delivered"}
}

func unixMS(t time.Time) int64 { return t.UnixMilli() }

// Enqueue implements webhook.Queue.
func (q *WebhookQueue) Enqueue(ctx context.Context, d webhook.Delivery) error {
	if d.ID == "" {
		return fmt.Errorf("redis webhook: delivery without an id")
	}
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	ctx, cancel := q.s.bound(ctx)
	defer cancel()
	pipe := q.s.rdb.TxPipeline()
	pipe.HSet(ctx, q.items, d.ID, data)
	pipe.ZAdd(ctx, q.due, goredis.Z{Score: float64(unixMS(d.NextAt)), Member: d.ID})
	if _, err := pipe.Exec(ctx); err != nil {
		return q.s.fail("webhook enqueue", err)
	}
	return nil
}

// leaseScript takes the earliest due delivery and hides it until its lease ends, or returns
// the earliest due time. KEYS: due, items, leased. ARGV: now ms, lease end ms.
var leaseScript = goredis.NewScript(`
local first = redis.call("ZRANGE", KEYS[1], 0, 0, "WITHSCORES")
if #first == 0 then return {"", ""} end
if tonumber(first[2]) > tonumber(ARGV[1]) then return {"", first[2]} end
redis.call("ZADD", KEYS[1], ARGV[2], first[1])
redis.call("HSET", KEYS[3], first[1], ARGV[2])
return {redis.call("HGET", KEYS[2], first[1]) or "", ""}
`)

// Lease implements webhook.Queue.
func (q *WebhookQueue) Lease(ctx context.Context, now time.Time, ttl time.Duration) (*webhook.Delivery, time.Time, error) {
	ctx, cancel := q.s.bound(ctx)
	defer cancel()
	res, err := leaseScript.Run(ctx, q.s.rdb, []string{q.due, q.items, q.leased}, unixMS(now), unixMS(now.Add(ttl))).StringSlice()
	if err != nil {
		return nil, time.Time{}, q.s.fail("webhook lease", err)
	}
	if res[0] == "" {
		if res[1] == "" {
			return nil, time.Time{}, nil
		}
		next, _ := strconv.ParseFloat(res[1], 64)
		return nil, time.UnixMilli(int64(next)), nil
	}
	var d webhook.Delivery
	if err := json.Unmarshal([]byte(res[0]), &d); err != nil {
		return nil, time.Time{}, fmt.Errorf("redis webhook: stored delivery: %w", err)
	}
	return &d, time.Time{}, nil
}

// update rewrites a delivery after an attempt.
func (q *WebhookQueue) update(ctx context.Context, id string, fn func(*webhook.Delivery), pipeFn func(goredis.Pipeliner)) error {
	ctx, cancel := q.s.bound(ctx)
	defer cancel()
	raw, err := q.s.rdb.HGet(ctx, q.items, id).Result()
	if err != nil {
		return q.s.fail("webhook load", err)
	}
	var d webhook.Delivery
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return fmt.Errorf("redis webhook: stored delivery: %w", err)
	}
	fn(&d)
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	pipe := q.s.rdb.TxPipeline()
	pipe.HSet(ctx, q.items, id, data)
	pipe.HDel(ctx, q.leased, id)
	pipeFn(pipe)
	if _, err := pipe.Exec(ctx); err != nil {
		return q.s.fail("webhook update", err)
	}
	return nil
}

// Ack implements webhook.Queue.
func (q *WebhookQueue) Ack(ctx context.Context, id string) error {
	ctx, cancel := q.s.bound(ctx)
	defer cancel()
	pipe := q.s.rdb.TxPipeline()
	pipe.HDel(ctx, q.items, id)
	pipe.ZRem(ctx, q.due, id)
	pipe.HDel(ctx, q.leased, id)
	pipe.Incr(ctx, q.counter)
	if _, err := pipe.Exec(ctx); err != nil {
		return q.s.fail("webhook ack", err)
	}
	return nil
}

// Retry implements webhook.Queue.
func (q *WebhookQueue) Retry(ctx context.Context, id string, at time.Time, lastErr string) error {
	return q.update(ctx, id, func(d *webhook.Delivery) { d.Attempts++; d.NextAt = at; d.LastError = lastErr },
		func(p goredis.Pipeliner) { p.ZAdd(ctx, q.due, goredis.Z{Score: float64(unixMS(at)), Member: id}) })
}

// DeadLetter implements webhook.Queue.
func (q *WebhookQueue) DeadLetter(ctx context.Context, id string, lastErr string) error {
	return q.update(ctx, id, func(d *webhook.Delivery) { d.Attempts++; d.Dead = true; d.LastError = lastErr },
		func(p goredis.Pipeliner) { p.ZRem(ctx, q.due, id); p.SAdd(ctx, q.dead, id) })
}

// Stats implements webhook.Queue.
func (q *WebhookQueue) Stats(ctx context.Context) (webhook.QueueStats, error) {
	ctx, cancel := q.s.bound(ctx)
	defer cancel()
	var st webhook.QueueStats
	all, err := q.s.rdb.HGetAll(ctx, q.items).Result()
	if err != nil {
		return st, q.s.fail("webhook stats", err)
	}
	leased, err := q.s.rdb.HGetAll(ctx, q.leased).Result()
	if err != nil {
		return st, q.s.fail("webhook stats", err)
	}
	now := unixMS(time.Now())
	for id, raw := range all {
		var d webhook.Delivery
		if json.Unmarshal([]byte(raw), &d) != nil {
			continue
		}
		until, _ := strconv.ParseInt(leased[id], 10, 64)
		switch {
		case d.Dead:
			st.Dead++
		case until > now:
			st.Leased++
		case d.Attempts == 0:
			st.Pending++
		default:
			st.Retrying++
		}
	}
	n, err := q.s.rdb.Get(ctx, q.counter).Int64()
	if err != nil && err != goredis.Nil {
		return st, q.s.fail("webhook stats", err)
	}
	st.Delivered = uint64(n)
	return st, nil
}
