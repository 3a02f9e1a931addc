package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/callproof/callproof/sessions"
)

// Log stores agent messages per call: sessions.AgentLog. *sessions.Memory and
// sessions/redis' Store implement it. A Log that is also a sessions.AgentWatcher (both of
// those are) lets the hub deliver messages appended by any node.
type Log = sessions.AgentLog

var (
	_ Log                   = (*sessions.Memory)(nil)
	_ sessions.AgentWatcher = (*sessions.Memory)(nil)
)

// Feed retry pacing after a store error.
const (
	feedRetryMin = 50 * time.Millisecond
	feedRetryMax = 2 * time.Second
)

// Hub stores agent messages and pushes them to subscribed agent connections. It implements
// sessions.Publisher.
//
// With a Log that is a sessions.AgentWatcher, Publish only appends, and one pump goroutine
// reads the log's feed (this node's appends and, on a shared log, every other node's) and
// fans each message out: so an agent connected to any node sees every node's messages.
// With a plain Log, Publish fans out itself. Either way an agent sees each message of its
// subscriptions exactly once, per call in event id order: a subscription's replay (read from
// the log while live messages for it are held back) and its live messages are joined on the
// event id, skipping what the replay already delivered.
type Hub struct {
	log   *zap.Logger
	store Log
	feed  sessions.AgentFeed // nil: Publish fans out

	ctx    context.Context // cancelled by Close; bounds store calls made for agents
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	status *Status // this node's last status (SetStatus); nil: never set
	// undelivered holds, per call, the newest event id stored through this hub that the pump
	// has not fanned out yet: Close waits, briefly, for it to empty.
	undelivered map[string]sessions.EventID
	wg          sync.WaitGroup // handler goroutines (each joins its writer)
	pumped      chan struct{}  // closed when the pump has exited

	closeOnce  sync.Once
	nextID     atomic.Uint64
	slow       atomic.Uint64
	published  atomic.Uint64
	deliveredN atomic.Uint64
	feedErrors atomic.Uint64
}

var _ sessions.Publisher = (*Hub)(nil)

// NewHub returns a hub storing messages in store. A nil log means zap.NewNop(). When store
// is a sessions.AgentWatcher the hub starts its pump (Close stops it); if Watch fails, the
// hub logs it and delivers only the messages published through it.
func NewHub(log *zap.Logger, store Log) *Hub {
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{log: log, store: store, ctx: ctx, cancel: cancel, conns: make(map[*conn]struct{}),
		undelivered: make(map[string]sessions.EventID)}
	if w, ok := store.(sessions.AgentWatcher); ok {
		feed, err := w.Watch(ctx)
		if err != nil {
			log.Error("agent: cannot watch the message log: delivering only this hub's messages", zap.Error(err))
		} else {
			h.feed = feed
			h.pumped = make(chan struct{})
			go h.pump()
		}
	}
	return h
}

// Publish stores m in its call's log, from where it reaches every agent subscribed to the
// call or to all calls, on this node or (with a shared log) any other. It never waits for an
// agent: an agent whose queue is full is disconnected. It fails (and the caller fails
// closed) when the log cannot store m or after Close.
func (h *Hub) Publish(ctx context.Context, m sessions.AgentMessage) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if h.feed != nil {
		h.mu.Lock()
		closed := h.closed
		h.mu.Unlock()
		if closed {
			return ErrClosed
		}
		stored, err := h.store.Append(ctx, m)
		if err != nil {
			return fmt.Errorf("agent: store message: %w", err)
		}
		h.published.Add(1)
		if id, err := sessions.ParseEventID(stored.ID); err == nil {
			h.mu.Lock()
			if cur, ok := h.undelivered[m.Call]; ok && id.Compare(cur) > 0 || !ok && len(h.undelivered) < maxUndelivered {
				h.undelivered[m.Call] = id
			}
			h.mu.Unlock()
		}
		return nil // the pump delivers it
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	stored, err := h.store.Append(ctx, m)
	if err != nil {
		return fmt.Errorf("agent: store message: %w", err)
	}
	h.published.Add(1)
	h.deliver(stored)
	return nil
}

// pump feeds the log's appends to deliver until Close. Store errors are retried with
// backoff; the feed loses nothing meanwhile.
func (h *Hub) pump() {
	defer close(h.pumped)
	wait := feedRetryMin
	failing := false
	for {
		msgs, err := h.feed.Next(h.ctx)
		if err != nil {
			if h.ctx.Err() != nil || errors.Is(err, sessions.ErrClosed) {
				return
			}
			h.feedErrors.Add(1)
			if !failing {
				h.log.Warn("agent feed failing: retrying", zap.Error(err))
				failing = true
			}
			t := time.NewTimer(wait)
			select {
			case <-h.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait = min(2*wait, feedRetryMax)
			continue
		}
		if failing {
			h.log.Info("agent feed recovered")
			failing = false
		}
		wait = feedRetryMin
		h.mu.Lock()
		for _, m := range msgs {
			h.deliver(m)
		}
		h.mu.Unlock()
	}
}

// deliver queues m for every connection that subscribed to its call and has not had it.
// hub.mu is held.
func (h *Hub) deliver(m sessions.AgentMessage) {
	h.deliveredN.Add(1)
	id, err := sessions.ParseEventID(m.ID)
	if err != nil {
		h.log.Error("agent: message without a valid event id", zap.String("call", m.Call))
		return
	}
	if cur, ok := h.undelivered[m.Call]; ok && id.Compare(cur) >= 0 {
		delete(h.undelivered, m.Call)
	}
	if len(h.conns) == 0 {
		return
	}
	var data []byte
	for c := range h.conns {
		if c.holds(m) || !c.accepts(m.Call, id) {
			continue
		}
		if data == nil {
			if data, err = prepare(m); err != nil {
				h.log.Error("agent: encode", zap.Error(err))
				return
			}
		}
		c.push(data, true)
	}
}

// Stats are counters for tests and operations.
type Stats struct {
	// Conns is the number of agent connections open now.
	Conns int
	// Published counts messages stored through this hub since it started.
	Published uint64
	// Delivered counts messages, from any node, this hub has fanned out to its agents
	// (whether or not one had subscribed to them).
	Delivered uint64
	// SlowDisconnects counts agents disconnected for falling behind.
	SlowDisconnects uint64
	// FeedErrors counts failed reads of the log's feed (each retried).
	FeedErrors uint64
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	n := len(h.conns)
	h.mu.Unlock()
	return Stats{Conns: n, Published: h.published.Load(), Delivered: h.deliveredN.Load(),
		SlowDisconnects: h.slow.Load(), FeedErrors: h.feedErrors.Load()}
}

// Close lets the pump deliver what was stored through this hub (up to a second), disconnects
// every agent with 1001 (going away) once what was queued for it is written (within the close
// grace), stops the pump and closes the feed,
// waits for all goroutines and makes Publish fail with ErrClosed. Later calls return at
// once; new connections get 503. It does not close the store.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		conns := make([]*conn, 0, len(h.conns))
		for c := range h.conns {
			conns = append(conns, c)
		}
		h.mu.Unlock()
		h.catchUp(closeCatchUp)
		h.cancel()
		if h.feed != nil {
			_ = h.feed.Close() // unblocks a Next waiting on the store
		}
		for _, c := range conns {
			c.flushOnClose.Store(true) // what was queued still goes out, within the close grace
			c.kill(websocket.CloseGoingAway, "server shutting down")
		}
		h.wg.Wait()
		if h.pumped != nil {
			<-h.pumped
		}
	})
}

// closeCatchUp bounds how long Close waits for the pump to deliver what this hub stored, and
// maxUndelivered the calls it tracks for that (a message the log lost is never delivered).
const (
	closeCatchUp   = time.Second
	maxUndelivered = 100_000
)

// catchUp waits, up to d, until the pump has fanned out every message stored through this hub
// (a draining server's last calls' outcomes), so that Close can still write them.
func (h *Hub) catchUp(d time.Duration) {
	if h.feed == nil {
		return // Publish delivered them itself
	}
	deadline := time.Now().Add(d)
	for {
		h.mu.Lock()
		done := len(h.undelivered) == 0
		h.mu.Unlock()
		if done || time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// enter registers a handler goroutine unless the hub is closed.
func (h *Hub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	return true
}

// register adds c to the fan-out set unless the hub is closed.
func (h *Hub) register(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = struct{}{}
	h.greet(c)
	return true
}

func (h *Hub) unregister(c *conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

// Reasons sent in error replies.
const (
	reasonUnknownType  = "unknown message type"
	reasonBadSubscribe = "subscribe needs either a call id or all:true"
	reasonBadCall      = "invalid call id"
	reasonBadAfter     = "invalid after: want an event id like 1740830400000-0"
	reasonTooMany      = "too many subscriptions on one connection"
	reasonUnavailable  = "message log unavailable"
	reasonBadMessage   = "invalid message"
	maxCallIDLen       = 128
)

// subscribe replays the log for the subscription, then makes it live. While the log is read
// (without the hub lock, so that other agents' deliveries do not wait on the store), live
// messages for the subscription are held on the connection; afterwards the replay is queued,
// then the held messages that the replay did not include. Calls already covered by the
// connection's subscriptions are not replayed again.
func (h *Hub) subscribe(c *conn, call string, all bool, after string) (reason string) {
	var afterID sessions.EventID
	if after != "" {
		var err error
		if afterID, err = sessions.ParseEventID(after); err != nil {
			return reasonBadAfter
		}
	}
	h.mu.Lock()
	if c.all || (!all && c.hasCall(call)) {
		h.mu.Unlock()
		return "" // already subscribed: everything for it is on its way
	}
	if !all && len(c.calls) >= c.cfg.maxSubscriptions {
		h.mu.Unlock()
		return reasonTooMany
	}
	c.pending = &pendingSub{call: call, all: all}
	h.mu.Unlock()

	which := call
	if all {
		which = ""
	}
	msgs, err := h.store.Since(h.ctx, which, after)

	h.mu.Lock()
	defer h.mu.Unlock()
	held := c.pending
	c.pending = nil
	if err != nil {
		if errors.Is(err, sessions.ErrBadEventID) {
			return reasonBadAfter
		}
		c.log.Warn("agent replay failed", zap.Error(err))
		return reasonUnavailable
	}
	if held.overflow {
		c.tooSlow()
		return ""
	}
	if c.cursor == nil {
		c.cursor = make(map[string]sessions.EventID)
	}
	replayed := 0
	for _, m := range msgs {
		if all && c.hasCall(m.Call) {
			continue // delivered through the call's own subscription
		}
		id, err := sessions.ParseEventID(m.ID)
		if err != nil {
			continue
		}
		data, err := prepare(m)
		if err != nil {
			c.log.Error("agent replay: encode", zap.Error(err))
			return reasonUnavailable
		}
		c.push(data, false)
		replayed++
		if cur, ok := c.cursor[m.Call]; !ok || id.Compare(cur) > 0 {
			c.cursor[m.Call] = id
		}
	}
	if all {
		c.all, c.calls = true, nil
		if after != "" {
			c.floor, c.hasFloor = afterID, true
		}
	} else {
		if c.calls == nil {
			c.calls = make(map[string]struct{})
		}
		c.calls[call] = struct{}{}
		if cur, ok := c.cursor[call]; after != "" && (!ok || afterID.Compare(cur) > 0) {
			c.cursor[call] = afterID
		}
	}
	for _, m := range held.msgs {
		id, _ := sessions.ParseEventID(m.ID)
		if !c.accepts(m.Call, id) {
			continue
		}
		data, err := prepare(m)
		if err != nil {
			c.log.Error("agent: encode", zap.Error(err))
			return reasonUnavailable
		}
		c.push(data, false) // bounded by maxHeld, like the replay by the log
	}
	c.log.Debug("agent subscribed", zap.String("call", call), zap.Bool("all", all),
		zap.Int("replayed", replayed), zap.Int("held", len(held.msgs)))
	return ""
}

// prepare encodes v once for every agent it goes to. Not as a websocket.PreparedMessage:
// without compression that only saves copying the message into each connection's buffer, and
// building its frame allocated a 4 KiB buffer and a connection per message, half of what a
// server under load allocated.
func prepare(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("agent: encode message: %w", err)
	}
	return data, nil
}
