package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callproof/callproof/sessions/audit"
)

// AuditStream is the shared queue of request records on a multi-node deployment: every node
// appends records to one Redis Stream (audit.Sink), and the writer node reads them through a
// consumer group and appends them to its hash-chained file (audit.Source, with audit.Forward),
// acknowledging an entry only once it is on disk. A record is never lost when a node dies:
// it is in Redis from the moment Append returns, and an entry the writer read but did not
// acknowledge is read again (its own pending entries first) when the writer restarts.
//
// When Redis loses its data, the records appended in the last recentAuditAge that the writer
// had not yet taken are gone from the stream: each node keeps its last recentAuditMax records
// of that age in memory and appends them again once it notices the loss (the writer drops the
// ones it already has, by id).
type AuditStream struct {
	s        *Store
	stream   string
	group    string
	consumer string

	mu      sync.Mutex
	created bool
	pending bool // still reading own pending entries ("0") before new ones (">")

	recentMu sync.Mutex
	recent   []recentRecord // ring of the last records appended, oldest at next
	next     int
}

// What a node keeps of its own records, to append again after Redis lost its data. The
// writer's dedup window (audit.DefaultDedupWindow) is larger, so none is written twice.
const (
	recentAuditMax = 1024
	recentAuditAge = 10 * time.Minute
)

type recentRecord struct {
	data []byte
	at   time.Time
}

var (
	_ audit.Sink   = (*AuditStream)(nil)
	_ audit.Source = (*AuditStream)(nil)
)

// AuditStream returns the deployment's audit stream; consumer names this node in the
// writers' consumer group (a stable node name keeps its pending entries across restarts).
func (s *Store) AuditStream(consumer string) *AuditStream {
	a := &AuditStream{s: s, stream: s.prefix + "{audit}:records", group: "audit-writer", consumer: consumer, pending: true}
	s.epochMu.Lock()
	s.audits = append(s.audits, a)
	s.epochMu.Unlock()
	return a
}

// Append validates r and adds it to the stream; it returns once Redis has it.
func (a *AuditStream) Append(ctx context.Context, r audit.Record) error {
	if r.Channel == "" {
		r.Channel = "ivr"
	}
	if err := r.Validate(); err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("redis audit: %w", err)
	}
	ctx, cancel := a.s.bound(ctx)
	defer cancel()
	if err := a.s.rdb.XAdd(ctx, &goredis.XAddArgs{Stream: a.stream, Values: map[string]any{"r": data}}).Err(); err != nil {
		return a.s.fail("audit append", err)
	}
	a.remember(data)
	return nil
}

// remember keeps data in the ring of recent records.
func (a *AuditStream) remember(data []byte) {
	a.recentMu.Lock()
	defer a.recentMu.Unlock()
	r := recentRecord{data: data, at: a.s.now()}
	if len(a.recent) < recentAuditMax {
		a.recent = append(a.recent, r)
		return
	}
	a.recent[a.next] = r
	a.next = (a.next + 1) % recentAuditMax
}

// reappend appends the recent records again, oldest first, after Redis lost its data. It
// returns how many it appended.
func (a *AuditStream) reappend(ctx context.Context) (int, error) {
	now := a.s.now()
	a.recentMu.Lock()
	var todo [][]byte
	for i := range a.recent {
		r := a.recent[(a.next+i)%len(a.recent)]
		if now.Sub(r.at) < recentAuditAge {
			todo = append(todo, r.data)
		}
	}
	a.recentMu.Unlock()
	for batch := range slices.Chunk(todo, pipelineBatch) {
		if err := a.s.pipelined(ctx, func(p goredis.Pipeliner) {
			for _, data := range batch {
				p.XAdd(ctx, &goredis.XAddArgs{Stream: a.stream, Values: map[string]any{"r": data}})
			}
		}); err != nil {
			return 0, a.s.fail("audit reappend", err)
		}
	}
	return len(todo), nil // the writer's next read finds no group and creates it again
}

// Receive implements audit.Source: this consumer's pending entries first, then new ones,
// waiting up to two seconds for them.
func (a *AuditStream) Receive(ctx context.Context) ([]audit.Entry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.created {
		cctx, cancel := a.s.bound(ctx)
		err := a.s.rdb.XGroupCreateMkStream(cctx, a.stream, a.group, "0").Err()
		cancel()
		if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
			return nil, a.s.fail("audit group", err)
		}
		a.created = true
	}
	for {
		id, block := ">", 2*time.Second
		if a.pending {
			id, block = "0", -1 // history: no BLOCK
		}
		out, err := a.read(ctx, id, block)
		if err != nil {
			return nil, err
		}
		if a.pending && len(out) == 0 {
			a.pending = false // own pending entries done: now the new ones
			continue
		}
		return out, nil
	}
}

func (a *AuditStream) read(ctx context.Context, id string, block time.Duration) ([]audit.Entry, error) {
	rctx, cancel := context.WithTimeout(ctx, a.s.opTimeout+max(block, 0))
	defer cancel()
	res, err := a.s.rdb.XReadGroup(rctx, &goredis.XReadGroupArgs{Group: a.group, Consumer: a.consumer,
		Streams: []string{a.stream, id}, Count: 256, Block: block}).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			a.created, a.pending = false, true // Redis lost the stream: create the group again
		}
		return nil, a.s.fail("audit receive", err)
	}
	var out []audit.Entry
	for _, st := range res {
		for _, m := range st.Messages {
			e := audit.Entry{ID: m.ID}
			if raw, ok := m.Values["r"].(string); ok {
				_ = json.Unmarshal([]byte(raw), &e.Record) // a bad entry comes back zero: Forward drops it
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// Ack implements audit.Source: the entries are in the file; they leave the stream.
func (a *AuditStream) Ack(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := a.s.bound(ctx)
	defer cancel()
	pipe := a.s.rdb.TxPipeline()
	pipe.XAck(ctx, a.stream, a.group, ids...)
	pipe.XDel(ctx, a.stream, ids...)
	if _, err := pipe.Exec(ctx); err != nil {
		return a.s.fail("audit ack", err)
	}
	return nil
}
