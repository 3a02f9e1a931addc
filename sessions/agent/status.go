package agent

import (
	"time"

	"go.uber.org/zap"
)

// TypeStatus is the type of a Status message.
const TypeStatus = "status"

// Status states.
const (
	// StatusOK: this node verifies callers.
	StatusOK = "ok"
	// StatusDegraded: this node cannot verify callers now; Reason and Detail say why.
	StatusDegraded = "degraded"
)

// Status reasons.
const (
	// ReasonStateStoreUnavailable: the state store (Redis) does not answer. Callers hear
	// technical_difficulty and nobody is verified; agent messages may not be delivered.
	ReasonStateStoreUnavailable = "state_store_unavailable"
	// ReasonStateStoreRestoring: Redis came back without its data and the nodes are writing
	// back what they hold; verification resumes within seconds.
	ReasonStateStoreRestoring = "state_store_restoring"
)

// Status is what a node tells its own agents about itself:
//
//	{"type":"status","state":"degraded","reason":"state_store_unavailable","detail":"…","node":"cp-1","at":"…"}
//	{"type":"status","state":"ok","node":"cp-1","at":"…"}
//
// Unlike call messages it is not stored in the message log (which may be what is down): it
// has no call and no event id, is never replayed, and goes to every agent connected to this
// node, whatever it subscribed to, when the state changes; an agent that connects while the
// node is degraded gets it first. A node that is fine sends none on connect.
type Status struct {
	Type   string    `json:"type"`
	State  string    `json:"state"`
	Reason string    `json:"reason,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Node   string    `json:"node,omitempty"`
	At     time.Time `json:"at"`
}

// SetStatus records this node's status and, when its state or reason changed, pushes it to
// every connected agent. The first status a hub gets is pushed only when degraded. It never
// blocks on an agent, and does nothing after Close.
func (h *Hub) SetStatus(st Status) {
	st.Type = TypeStatus
	if st.State == "" {
		st.State = StatusOK
	}
	if st.State == StatusOK {
		st.Reason, st.Detail = "", ""
	}
	if st.At.IsZero() {
		st.At = time.Now().UTC()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	prev := h.status
	h.status = &st // the latest words and time, for agents that connect later
	if prev == nil && st.State == StatusOK || prev != nil && prev.State == st.State && prev.Reason == st.Reason {
		return
	}
	data, err := prepare(st)
	if err != nil {
		h.log.Error("agent: encode status", zap.Error(err))
		return
	}
	for c := range h.conns {
		c.push(data, true)
	}
	h.log.Info("agent status", zap.String("state", st.State), zap.String("reason", st.Reason), zap.Int("agents", len(h.conns)))
}

// greet queues the node's status for a new connection when the node is degraded. hub.mu is
// held.
func (h *Hub) greet(c *conn) {
	if h.status == nil || h.status.State == StatusOK {
		return
	}
	data, err := prepare(*h.status)
	if err != nil {
		return
	}
	c.push(data, true)
}
