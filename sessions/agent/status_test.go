package agent_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/sessions/agent"
)

func recvRaw(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return m
}

// A node's status goes to every agent connected to it, subscribed or not, once per change;
// an agent that connects while the node is degraded hears it first; status messages are not
// in the log (no id, never replayed) and do not disturb the call messages.
func TestStatusNotices(t *testing.T) {
	e := newEnv(t)
	e.hub.SetStatus(agent.Status{State: agent.StatusOK}) // a fine node says nothing
	idle := e.dial(t)                                    // connected, not subscribed
	sub := e.dial(t)
	send(t, sub, map[string]any{"type": "subscribe", "all": true})
	e.publish(t, step("CA1", "ask_account"))
	if m := recv(t, sub); m.Call != "CA1" || m.Step != "ask_account" {
		t.Fatalf("first message %+v, want the step (no status while fine)", m)
	}

	down := agent.Status{State: agent.StatusDegraded, Reason: agent.ReasonStateStoreUnavailable,
		Detail: "Verification is unavailable: the state store cannot be reached.", Node: "cp-1"}
	e.hub.SetStatus(down)
	e.hub.SetStatus(down) // no change: no second notice
	for _, c := range []*websocket.Conn{idle, sub} {
		m := recvRaw(t, c)
		if m["type"] != "status" || m["state"] != "degraded" || m["reason"] != "state_store_unavailable" ||
			m["node"] != "cp-1" || !strings.Contains(m["detail"].(string), "state store") || m["id"] != nil || m["call"] != nil {
			t.Fatalf("status message %v", m)
		}
	}
	late := e.dial(t)
	if m := recvRaw(t, late); m["type"] != "status" || m["state"] != "degraded" {
		t.Fatalf("an agent connecting while degraded first got %v", m)
	}

	e.hub.SetStatus(agent.Status{State: agent.StatusOK, Node: "cp-1"})
	for _, c := range []*websocket.Conn{idle, sub, late} {
		if m := recvRaw(t, c); m["type"] != "status" || m["state"] != "ok" || m["reason"] != nil {
			t.Fatalf("recovery message %v", m)
		}
	}
	e.publish(t, step("CA1", "ask_dob"))
	if m := recv(t, sub); m.Step != "ask_dob" {
		t.Fatalf("after the notices: %+v", m)
	}
	fresh := e.dial(t)
	send(t, fresh, map[string]any{"type": "subscribe", "call": "CA1"})
	eq(t, recvSteps(t, fresh, 2), []string{"CA1/ask_account", "CA1/ask_dob"}) // no status replayed

	e.hub.Close()
	e.hub.SetStatus(down) // after Close: nothing, no panic
}

// Close (a server draining) writes what is already queued for each agent before the close
// frame: the last messages of the calls that just ended are not dropped.
func TestCloseFlushesQueuedMessages(t *testing.T) {
	e := newEnv(t)
	c := e.dial(t)
	send(t, c, map[string]any{"type": "subscribe", "all": true})
	e.publish(t, step("CA0", "first"))
	recv(t, c) // subscribed and live
	const n = 200
	for i := range n {
		e.publish(t, step("CA1", strconv.Itoa(i)))
	}
	e.hub.Close()
	for i := range n {
		if m := recv(t, c); m.Step != strconv.Itoa(i) {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("after the queued messages: %v, want close 1001", err)
	}
}
