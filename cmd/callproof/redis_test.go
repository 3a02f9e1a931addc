package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/redis/redistest"
)

// Two nodes share one Redis: a call placed on node A is followed by an agent on node B, which
// receives the token; B stops mid-call and the agent resumes on A from its last event id
// without missing anything; the token redeems once across both nodes.
func TestTwoNodesShareRedis(t *testing.T) {
	srv := redistest.Start(t)
	// Nodes of one deployment share the signing and server keys; each keeps its own data
	// directory (the audit log is one file per writer).
	first := t.TempDir()
	shared := func(c *Config) {
		c.Redis = srv.URL()
		if c.Data != first {
			for _, name := range []string{"server-key", "signing-key.pem"} {
				if b, err := os.ReadFile(filepath.Join(first, name)); err == nil {
					os.WriteFile(filepath.Join(c.Data, name), b, 0o600)
				}
			}
		}
	}
	notWriter := false
	follower := func(c *Config) { shared(c); c.AuditWriter = &notWriter }
	a := startNode(t, func(c *Config) { c.Data = first; shared(c) }) // the audit writer
	b := startNode(t, follower)

	// The agent on B subscribes to every call, then A takes a call.
	conn := dialAgent(t, b.url, "")
	err, out := a.callCLI(t, "--customer", "cus_ada")
	if err != nil {
		t.Fatalf("call on node A: %v\n%s", err, out)
	}
	call := callIDFrom(t, out)
	var got []sessions.AgentMessage
	var token string
	deadline := time.Now().Add(10 * time.Second)
	ended := false
	for time.Now().Before(deadline) && !ended {
		m := readAgent(t, conn)
		if m.Call != call {
			continue
		}
		got = append(got, m)
		if m.Type == "verified" {
			token = m.Token
		}
		ended = m.Type == "call" && m.State == "ended"
		if len(got) == 3 {
			// B goes away mid-stream; the agent reconnects to A with the last id it saw.
			conn.Close()
			b.app.Close()
			conn = dialAgent(t, a.url, got[len(got)-1].ID)
		}
	}
	if token == "" {
		t.Fatalf("no token across nodes; got %d messages", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID && len(got[i].ID) == len(got[i-1].ID) {
			t.Fatalf("messages out of order or repeated at %d: %s after %s", i, got[i].ID, got[i-1].ID)
		}
	}
	want := []string{"call", "step", "step", "step", "step", "step", "step", "step", "verified", "call"}
	var types []string
	for _, m := range got {
		types = append(types, m.Type)
	}
	if strings.Join(types, ",") != strings.Join(want, ",") {
		t.Fatalf("agent saw %v, want %v (nothing lost, nothing twice)", types, want)
	}
	conn.Close()

	// Single use across nodes: A redeems, B (a fresh node on the same Redis) refuses.
	c := startNode(t, follower)
	if code := redeem(t, a.url, token); code != http.StatusOK {
		t.Fatalf("first redemption: %d", code)
	}
	if code := redeem(t, c.url, token); code != http.StatusConflict {
		t.Fatalf("second redemption on another node: %d, want 409", code)
	}
	// Lockout counters are shared: failures on one node lock the account on the other.
	for i := 0; i < 3; i++ {
		n := a
		if i%2 == 1 {
			n = c
		}
		n.callCLI(t, "--customer", "cus_ben", "--answers", "ask_zip=00000")
	}
	if err, out := c.callCLI(t, "--customer", "cus_ben"); err == nil || !strings.Contains(out, "outcome: locked_out") {
		t.Fatalf("lockout not shared across nodes: %v\n%s", err, out)
	}
	// Every request of every node reaches the writer's chained file through Redis: 5 calls.
	deadline = time.Now().Add(10 * time.Second)
	for a.app.audit.Stats().Appended < 5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := a.app.audit.Stats().Appended; got != 5 {
		t.Fatalf("the writer's audit file has %d records, want the 5 requests of all nodes", got)
	}
}

func dialAgent(t *testing.T, base, after string) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+testAgentKey)
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/agent", h)
	if err != nil {
		t.Fatalf("agent dial: %v", err)
	}
	sub := map[string]any{"type": "subscribe", "all": true}
	if after != "" {
		sub["after"] = after
	}
	if err := conn.WriteJSON(sub); err != nil {
		t.Fatal(err)
	}
	return conn
}

func readAgent(t *testing.T, conn *websocket.Conn) sessions.AgentMessage {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m sessions.AgentMessage
	if err := conn.ReadJSON(&m); err != nil {
		t.Fatalf("agent read: %v", err)
	}
	return m
}

func redeem(t *testing.T, base, tok string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"token": tok})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/v1/tokens/redeem", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testAgentKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
