package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/callproof/callproof/sessions"
)

// Log stores agent messages per call; *sessions.Memory implements it.
type Log interface {
	// Append stores m with a fresh, increasing event id and returns the stored copy.
	Append(ctx context.Context, m sessions.AgentMessage) (sessions.AgentMessage, error)
	// Since returns call's messages after afterID ("" for all), oldest first; call "" means
	// every call the log holds, merged in event id order.
	Since(ctx context.Context, call, afterID string) ([]sessions.AgentMessage, error)
}

var _ Log = (*sessions.Memory)(nil)

// Hub stores agent messages and pushes them to subscribed agent connections. It implements
// sessions.Publisher. Publish and subscribe are serialised by one mutex so that a subscriber
// sees every message exactly once: either in its replay or live.
type Hub struct {
	log   *zap.Logger
	store Log

	ctx    context.Context // cancelled by Close; bounds store calls made for agents
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup // handler goroutines (each joins its writer)

	closeOnce sync.Once
	nextID    atomic.Uint64
	slow      atomic.Uint64
	published atomic.Uint64
}

var _ sessions.Publisher = (*Hub)(nil)

// NewHub returns a hub storing messages in store. A nil log means zap.NewNop().
func NewHub(log *zap.Logger, store Log) *Hub {
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{log: log, store: store, ctx: ctx, cancel: cancel, conns: make(map[*conn]struct{})}
}

// Publish stores m in its call's log and queues it for every agent subscribed to the call or
// to all calls. It never waits for an agent: an agent whose queue is full is disconnected.
// It fails (and the caller fails closed) when the log cannot store m or after Close.
func (h *Hub) Publish(ctx context.Context, m sessions.AgentMessage) error {
	if err := ctx.Err(); err != nil {
		return err
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
	if len(h.conns) == 0 {
		return nil
	}
	var pm *websocket.PreparedMessage
	for c := range h.conns {
		if !c.wants(stored.Call) {
			continue
		}
		if pm == nil {
			if pm, err = prepare(stored); err != nil {
				return err
			}
		}
		c.push(pm, true)
	}
	return nil
}

// Stats are counters for tests and operations.
type Stats struct {
	// Conns is the number of agent connections open now.
	Conns int
	// Published counts messages stored since the hub started.
	Published uint64
	// SlowDisconnects counts agents disconnected for falling behind.
	SlowDisconnects uint64
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	n := len(h.conns)
	h.mu.Unlock()
	return Stats{Conns: n, Published: h.published.Load(), SlowDisconnects: h.slow.Load()}
}

// Close disconnects every agent with 1001 (going away), waits for all connection goroutines
// and makes Publish fail with ErrClosed. Later calls return at once; new connections get 503.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		conns := make([]*conn, 0, len(h.conns))
		for c := range h.conns {
			conns = append(conns, c)
		}
		h.mu.Unlock()
		h.cancel()
		for _, c := range conns {
			c.kill(websocket.CloseGoingAway, "server shutting down")
		}
		h.wg.Wait()
	})
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

// subscribe replays the log for the subscription and registers it, atomically with respect
// to Publish. Calls already covered by the connection's subscriptions are not replayed again.
func (h *Hub) subscribe(c *conn, call string, all bool, after string) (reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.all || (!all && c.hasCall(call)) {
		return "" // already subscribed: everything for it is on its way
	}
	if !all && len(c.calls) >= c.cfg.maxSubscriptions {
		return reasonTooMany
	}
	which := call
	if all {
		which = ""
	}
	msgs, err := h.store.Since(h.ctx, which, after)
	if err != nil {
		if errors.Is(err, sessions.ErrBadEventID) {
			return reasonBadAfter
		}
		c.log.Warn("agent replay failed", zap.Error(err))
		return reasonUnavailable
	}
	for _, m := range msgs {
		if all && c.hasCall(m.Call) {
			continue // delivered through the call's own subscription
		}
		pm, err := prepare(m)
		if err != nil {
			c.log.Error("agent replay: encode", zap.Error(err))
			return reasonUnavailable
		}
		c.push(pm, false)
	}
	if all {
		c.all, c.calls = true, nil
	} else {
		if c.calls == nil {
			c.calls = make(map[string]struct{})
		}
		c.calls[call] = struct{}{}
	}
	c.log.Debug("agent subscribed", zap.String("call", call), zap.Bool("all", all), zap.Int("replayed", len(msgs)))
	return ""
}

func prepare(v any) (*websocket.PreparedMessage, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("agent: encode message: %w", err)
	}
	return websocket.NewPreparedMessage(websocket.TextMessage, data)
}
