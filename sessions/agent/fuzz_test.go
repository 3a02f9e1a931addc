package agent_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/sessions"
)

// FuzzClientMessage sends arbitrary client messages to a real agent WebSocket. Whatever the
// message, the connection either answers (an error reply or a subscription's replay) or
// closes with a close code, and the hub keeps serving: a well-formed subscription on a new
// connection still receives a published message.
func FuzzClientMessage(f *testing.F) {
	for _, seed := range []string{
		`{"type":"subscribe","call":"CA1"}`, `{"type":"subscribe","all":true}`,
		`{"type":"subscribe","all":true,"after":"0-0"}`, `{"type":"subscribe","call":"CA1","after":"junk"}`,
		`{"type":"unsubscribe"}`, `{"type":1}`, `{"type":"subscribe","call":"` + "\u0000" + `"}`, `[]`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := newEnv(t)
		c := e.dial(t)
		if err := c.WriteMessage(websocket.TextMessage, data); err != nil {
			t.Fatalf("write: %v", err)
		}
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, _, err := c.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok && ce.Code == websocket.CloseAbnormalClosure {
				t.Fatalf("the server dropped the connection without a close code: %v", err)
			}
		}
		// The hub still serves a good subscriber.
		good := e.dial(t)
		if err := good.WriteJSON(map[string]any{"type": "subscribe", "call": "CAfuzz"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		e.publish(t, sessions.AgentMessage{Type: "call", Call: "CAfuzz", State: "started"})
		good.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, msg, err := good.ReadMessage()
		var m sessions.AgentMessage
		if err != nil || json.Unmarshal(msg, &m) != nil || m.Call != "CAfuzz" {
			t.Fatalf("hub stopped serving after %q: %v %s", data, err, msg)
		}
	})
}
