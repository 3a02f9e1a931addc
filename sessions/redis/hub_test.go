package redis_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/agent"
	"github.com/callproof/callproof/sessions/redis"
	"github.com/callproof/callproof/sessions/redis/redistest"
)

const agentKey = "agent-key-0123456789abcdef"

// node is one Callproof node's agent delivery: its own Store on the shared Redis, a Hub and
// the agent endpoint.
type node struct {
	store *redis.Store
	hub   *agent.Hub
	url   string
}

func newNode(t *testing.T, addr, prefix string) *node {
	t.Helper()
	n := &node{store: open(t, addr, prefix, redis.WithCatchUp(200*time.Millisecond))}
	n.hub = agent.NewHub(zaptest.NewLogger(t), n.store)
	srv := httptest.NewServer(n.hub.Handler([]string{agentKey}))
	n.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	t.Cleanup(func() {
		n.hub.Close() // before the store closes (cleanups run last-in first-out)
		srv.Close()
	})
	return n
}

func (n *node) publish(t *testing.T, call string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := n.hub.Publish(context.Background(), stepMsg(call, fmt.Sprint(i))); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
}

func (n *node) dial(t *testing.T, sub map[string]any) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+agentKey)
	c, resp, err := websocket.DefaultDialer.Dial(n.url, h)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	sub["type"] = "subscribe"
	if err := c.WriteJSON(sub); err != nil {
		t.Fatal(err)
	}
	return c
}

// read reads n messages and returns them.
func read(t *testing.T, c *websocket.Conn, n int) []sessions.AgentMessage {
	t.Helper()
	out := make([]sessions.AgentMessage, n)
	for i := range out {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := c.ReadJSON(&out[i]); err != nil {
			t.Fatalf("read %d of %d: %v", i, n, err)
		}
		if out[i].Type == "error" {
			t.Fatalf("error reply: %s", out[i].Reason)
		}
	}
	return out
}

func stepsOf(call string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s/%d", call, i))
	}
	return out
}

// noMore checks that nothing else arrives on c for a moment.
func noMore(t *testing.T, c *websocket.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var m sessions.AgentMessage
	if err := c.ReadJSON(&m); err == nil {
		t.Fatalf("unexpected message %v", m)
	}
}

// TestTwoHubsOnRedis: two nodes, each with its own Store and Hub on one Redis. An agent on
// node B receives, in order, everything published on node A; it drops, more is published,
// and it resumes on node A after the last id it saw, missing nothing and seeing nothing twice.
func TestTwoHubsOnRedis(t *testing.T) {
	addr := redistest.Addr(t)
	prefix := redistest.Prefix()
	a, b := newNode(t, addr, prefix), newNode(t, addr, prefix)

	a.publish(t, "CA1", 0, 5) // before the agent connects: replayed
	onB := b.dial(t, map[string]any{"call": "CA1"})
	allB := b.dial(t, map[string]any{"all": true})
	got := read(t, onB, 5)
	if fmt.Sprint(names(got)) != fmt.Sprint(stepsOf("CA1", 0, 5)) {
		t.Fatalf("replay on B: %v", names(got))
	}
	a.publish(t, "CA1", 5, 40) // live, from the other node
	b.publish(t, "CA2", 0, 3)  // another call, from B itself
	got = append(got, read(t, onB, 35)...)
	if fmt.Sprint(names(got)) != fmt.Sprint(stepsOf("CA1", 0, 40)) {
		t.Fatalf("B's agent got %v", names(got))
	}
	all := read(t, allB, 43)
	byCall := perCall(all)
	if len(byCall["CA1"]) != 40 || len(byCall["CA2"]) != 3 ||
		fmt.Sprint(byCall["CA2"]) != "[0 1 2]" || byCall["CA1"][39] != "39" {
		t.Fatalf("B's all-calls agent got %v", names(all))
	}
	noMore(t, onB)

	// The agent drops; more is published on A; it reconnects to A and resumes.
	last := got[len(got)-1]
	onB.Close()
	a.publish(t, "CA1", 40, 50)
	onA := a.dial(t, map[string]any{"call": "CA1", "after": last.ID})
	if rest := read(t, onA, 10); fmt.Sprint(names(rest)) != fmt.Sprint(stepsOf("CA1", 40, 50)) {
		t.Fatalf("resumed on A: %v", names(rest))
	}
	b.publish(t, "CA1", 50, 52) // and live again, from B
	if rest := read(t, onA, 2); fmt.Sprint(names(rest)) != fmt.Sprint(stepsOf("CA1", 50, 52)) {
		t.Fatalf("live on A from B: %v", names(rest))
	}
	noMore(t, onA)

	// The all-calls agent resumes on A after the last id it saw.
	lastAll := all[len(all)-1]
	allB.Close()
	b.publish(t, "CA3", 0, 2)
	allA := a.dial(t, map[string]any{"all": true, "after": lastAll.ID})
	rest := read(t, allA, 14)
	if fmt.Sprint(names(rest)) != fmt.Sprint(append(stepsOf("CA1", 40, 52), stepsOf("CA3", 0, 2)...)) {
		t.Fatalf("all-calls resume on A: %v", names(rest))
	}
	noMore(t, allA)
}

// TestHubsRecoverAfterRedisRestart: messages published after Redis comes back reach an agent
// on the other node without reconnecting it.
func TestHubsRecoverAfterRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	prefix := redistest.Prefix()
	a, b := newNode(t, srv.Addr, prefix), newNode(t, srv.Addr, prefix)
	onB := b.dial(t, map[string]any{"call": "CA1"})
	time.Sleep(100 * time.Millisecond) // let the (empty) replay finish
	a.publish(t, "CA1", 0, 2)
	read(t, onB, 2)
	srv.Stop()
	if err := a.hub.Publish(context.Background(), stepMsg("CA1", "lost")); err == nil {
		t.Fatal("Publish with Redis down succeeded: want an error (fail closed)")
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for a.hub.Publish(context.Background(), stepMsg("CA1", "2")) != nil {
		if time.Now().After(deadline) {
			t.Fatal("Publish never recovered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.publish(t, "CA1", 3, 5)
	if got := read(t, onB, 3); fmt.Sprint(names(got)) != fmt.Sprint(stepsOf("CA1", 2, 5)) {
		t.Fatalf("after the restart: %v", names(got))
	}
	if b.hub.Stats().FeedErrors == 0 {
		t.Fatal("B's feed saw no error while Redis was down")
	}
}
