package agent

import (
	"encoding/json"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/callproof/callproof/sessions"
)

// conn is one agent connection: the handler goroutine reads, one writer goroutine writes
// what the hub queues.
type conn struct {
	hub *Hub
	ws  *websocket.Conn
	cfg *config
	log *zap.Logger

	// Subscriptions; guarded by hub.mu.
	all   bool
	calls map[string]struct{}
	// cursor holds, per call, the last event id a replay delivered (or the "after" the agent
	// gave): live messages up to it are not sent again. An entry goes once a newer message
	// passes it (the feed is in order per call).
	cursor map[string]sessions.EventID
	// floor is the "after" of an all-calls subscription: live messages of calls without a
	// cursor are sent only after it (event ids are ordered across calls in every Log).
	floor    sessions.EventID
	hasFloor bool
	// pending is the subscription being replayed; its live messages wait here.
	pending *pendingSub

	qmu    sync.Mutex
	queue  []queued
	queued atomic.Int64  // live messages queued or being written
	wake   chan struct{} // cap 1: the queue has something

	closing atomic.Bool // stop extending the read deadline
	// flushOnClose makes the writer write what is queued before the close frame (Hub.Close).
	flushOnClose atomic.Bool
	done         chan struct{}
	readerDone   chan struct{}
	rawLinger    bool // the reader stopped mid-message: discard raw bytes before closing
	killOnce     sync.Once
	closeCode    int    // 0: the peer is gone, send nothing; set once before done closes
	closeText    string //
	frameSent    bool   // the library already sent the close frame
}

// maxHeld bounds the live messages held for one subscription while its replay is read; they
// pile up because of the store, not the agent, so the bound is far above the send queue.
const maxHeld = 8192

// pendingSub holds live messages for a subscription whose replay is being read.
type pendingSub struct {
	call     string
	all      bool
	msgs     []sessions.AgentMessage
	overflow bool // more than maxHeld arrived: the agent is disconnected and resumes
}

type queued struct {
	data []byte // an encoded message, shared by every agent it goes to; never modified
	live bool
}

type clientMessage struct {
	Type  string `json:"type"`
	Call  string `json:"call"`
	All   bool   `json:"all"`
	After string `json:"after"`
}

type errorReply struct {
	Type   string `json:"type"`
	Call   string `json:"call,omitempty"`
	Reason string `json:"reason"`
}

func newConn(h *Hub, ws *websocket.Conn, cfg *config, remote string) *conn {
	id := h.nextID.Add(1)
	return &conn{
		hub:        h,
		ws:         ws,
		cfg:        cfg,
		log:        h.log.With(zap.Uint64("agent_conn", id), zap.String("remote", remote)),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
}

// serve runs c until it ends and tears it down; it returns after the writer has exited.
func (h *Hub) serve(c *conn) {
	if !h.register(c) {
		c.kill(websocket.CloseGoingAway, "server shutting down")
		c.sendClose()
		c.ws.Close()
		return
	}
	c.log.Info("agent connected")
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.readLoop()
	close(c.readerDone)
	h.unregister(c)
	<-writerDone
	if c.rawLinger {
		c.linger()
	}
	c.ws.Close()
	c.log.Info("agent disconnected", zap.Int("close_code", c.closeCode), zap.String("close_reason", c.closeText))
}

// wants reports whether c subscribed to call. hub.mu is held.
func (c *conn) wants(call string) bool { return c.all || c.hasCall(call) }

// holds keeps live message m for the subscription being replayed, if m is for it and not
// already for a live subscription. hub.mu is held.
func (c *conn) holds(m sessions.AgentMessage) bool {
	p := c.pending
	if p == nil || c.wants(m.Call) || (!p.all && p.call != m.Call) {
		return false
	}
	if len(p.msgs) >= maxHeld {
		p.overflow, p.msgs = true, nil
	}
	if !p.overflow {
		p.msgs = append(p.msgs, m)
	}
	return true
}

// accepts reports whether live message id of call is for c and new to it. hub.mu is held.
func (c *conn) accepts(call string, id sessions.EventID) bool {
	if !c.wants(call) {
		return false
	}
	if cur, ok := c.cursor[call]; ok {
		if id.Compare(cur) <= 0 {
			return false // the replay delivered it
		}
		delete(c.cursor, call)
		return true
	}
	return !c.all || !c.hasFloor || id.Compare(c.floor) > 0
}

func (c *conn) hasCall(call string) bool {
	_, ok := c.calls[call]
	return ok
}

// push queues data without blocking. A live message beyond the queue bound disconnects c as
// too slow; replayed messages are bounded by the log instead.
func (c *conn) push(data []byte, live bool) {
	c.qmu.Lock()
	select {
	case <-c.done:
		c.qmu.Unlock()
		return
	default:
	}
	if live && c.queued.Load() >= int64(c.cfg.sendQueue) {
		c.qmu.Unlock()
		c.tooSlow()
		return
	}
	if live {
		c.queued.Add(1)
	}
	c.queue = append(c.queue, queued{data, live})
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// tooSlow disconnects an agent that fell behind; it resumes with "after".
func (c *conn) tooSlow() {
	c.hub.slow.Add(1)
	c.log.Warn("agent too slow: disconnecting", zap.Int("queue", c.cfg.sendQueue))
	c.kill(websocket.CloseTryAgainLater, "too slow: reconnect and resume with after")
}

func (c *conn) take() []queued {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	q := c.queue
	c.queue = nil
	return q
}

// kill ends c. code 0 means the peer is gone (nothing to send); otherwise the writer sends a
// close frame with code and text. Only the first call counts.
func (c *conn) kill(code int, text string) {
	c.killOnce.Do(func() {
		c.closeCode, c.closeText = code, text
		c.closing.Store(true)
		close(c.done)
		if code != 0 {
			// A writer stuck on an agent that does not read gives up after the grace.
			_ = c.ws.NetConn().SetWriteDeadline(time.Now().Add(c.cfg.closeGrace))
		}
	})
}

func (c *conn) writeLoop() {
	ping := time.NewTicker(c.cfg.pingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			c.shutdown(nil)
			return
		case <-c.wake:
			batch := c.take()
			for i, q := range batch {
				select {
				case <-c.done:
					c.shutdown(batch[i:])
					return
				default:
				}
				_ = c.ws.SetWriteDeadline(time.Now().Add(c.cfg.writeTimeout))
				if err := c.ws.WriteMessage(websocket.TextMessage, q.data); err != nil {
					c.writeFailed(err)
					return
				}
				if q.live {
					c.queued.Add(-1)
				}
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.cfg.writeTimeout)); err != nil {
				c.writeFailed(err)
				return
			}
		}
	}
}

// shutdown ends the writer. When the hub is closing (a server draining), it first writes what
// is still queued, rest then the queue, within the close grace: the last messages of the calls
// that just finished reach their agents. Then it starts the closing handshake.
func (c *conn) shutdown(rest []queued) {
	if c.flushOnClose.Load() {
		_ = c.ws.SetWriteDeadline(time.Now().Add(c.cfg.closeGrace))
		for _, q := range append(rest, c.take()...) {
			if c.ws.WriteMessage(websocket.TextMessage, q.data) != nil {
				break
			}
		}
	}
	c.closeHandshake()
}

// writeFailed ends a connection whose writes fail: the reader is unblocked by closing the
// socket (Close may be called concurrently with reads).
func (c *conn) writeFailed(err error) {
	c.log.Debug("agent write failed", zap.Error(err))
	c.kill(0, "")
	c.ws.Close()
}

// closeHandshake sends our close frame and waits, up to the grace, for the reader to see the
// agent's reply; an agent that does not reply is cut off.
func (c *conn) closeHandshake() {
	c.sendClose()
	t := time.NewTimer(c.cfg.closeGrace)
	defer t.Stop()
	select {
	case <-c.readerDone:
	case <-t.C:
		c.ws.Close()
	}
}

// sendClose starts the closing handshake (RFC 6455 §7.1.2) and bounds how long the reader
// waits for the agent's reply.
func (c *conn) sendClose() {
	if c.closeCode == 0 {
		return
	}
	if !c.frameSent {
		msg := websocket.FormatCloseMessage(c.closeCode, c.closeText)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.cfg.closeGrace))
	}
	_ = c.ws.NetConn().SetReadDeadline(time.Now().Add(c.cfg.closeGrace))
}

// linger reads and discards what the agent still sends (the rest of an oversize message, its
// close reply) until it closes or the grace ends, so that closing a socket with unread input
// does not reset the connection before the agent reads our close frame.
func (c *conn) linger() {
	nc := c.ws.NetConn()
	_ = nc.SetReadDeadline(time.Now().Add(c.cfg.closeGrace))
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, 1<<20))
}

func (c *conn) extendRead() {
	if !c.closing.Load() {
		_ = c.ws.SetReadDeadline(time.Now().Add(c.cfg.pongTimeout))
	}
}

// readLoop reads client messages until the connection ends. After a protocol violation it
// keeps reading, discarding, until the agent answers our close frame (or the grace ends).
func (c *conn) readLoop() {
	c.ws.SetReadLimit(c.cfg.readLimit)
	c.extendRead()
	c.ws.SetPongHandler(func(string) error { c.extendRead(); return nil })
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				// The library sent 1009 and stops reading: drain the raw socket instead.
				c.killFrameSent(websocket.CloseMessageTooBig, "message too big")
				c.rawLinger = true
			}
			c.kill(0, "") // no-op if already closing; else the peer closed or went silent
			return
		}
		if c.closing.Load() {
			continue
		}
		c.extendRead()
		if typ != websocket.TextMessage {
			c.kill(websocket.CloseUnsupportedData, "text messages only")
			continue
		}
		if !json.Valid(data) {
			c.kill(websocket.CloseInvalidFramePayloadData, "malformed JSON")
			continue
		}
		var m clientMessage
		if err := json.Unmarshal(data, &m); err != nil {
			c.reply(errorReply{Type: "error", Reason: reasonBadMessage})
			continue
		}
		switch m.Type {
		case "subscribe":
			if reason := c.handleSubscribe(m); reason != "" {
				c.reply(errorReply{Type: "error", Call: safeCall(m.Call), Reason: reason})
			}
		default:
			c.reply(errorReply{Type: "error", Reason: reasonUnknownType})
		}
	}
}

// killFrameSent ends c after the library itself sent the close frame.
func (c *conn) killFrameSent(code int, text string) {
	c.killOnce.Do(func() {
		c.closeCode, c.closeText, c.frameSent = code, text, true
		c.closing.Store(true)
		close(c.done)
	})
}

func (c *conn) handleSubscribe(m clientMessage) string {
	switch {
	case m.All && m.Call != "", !m.All && m.Call == "":
		return reasonBadSubscribe
	case !m.All && !validCallID(m.Call):
		return reasonBadCall
	}
	return c.hub.subscribe(c, m.Call, m.All, m.After)
}

func (c *conn) reply(r errorReply) {
	data, err := prepare(r)
	if err != nil {
		return
	}
	c.push(data, true)
}

// validCallID accepts printable ASCII without spaces, up to maxCallIDLen bytes.
func validCallID(s string) bool {
	if s == "" || len(s) > maxCallIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// safeCall echoes a call id in an error reply only when it is well formed.
func safeCall(s string) string {
	if validCallID(s) {
		return s
	}
	return ""
}
