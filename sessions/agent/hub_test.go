package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/agent"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const key = "agent-key-0123456789abcdef"

type env struct {
	store *sessions.Memory
	hub   *agent.Hub
	srv   *httptest.Server
	url   string // ws://.../v1/agent
}

func newEnv(t *testing.T, opts ...agent.Option) *env {
	t.Helper()
	return newEnvWith(t, sessions.NewMemory(sessions.WithLimits(0, 0, 100000)), opts...)
}

func newEnvWith(t *testing.T, store *sessions.Memory, opts ...agent.Option) *env {
	t.Helper()
	e := &env{store: store}
	e.hub = agent.NewHub(zaptest.NewLogger(t), store)
	mux := http.NewServeMux()
	mux.Handle("GET /v1/agent", e.hub.Handler([]string{key, "second-agent-key-0123456789"}, opts...))
	e.srv = httptest.NewServer(mux)
	e.url = "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/v1/agent"
	t.Cleanup(func() {
		e.hub.Close() // hijacked connections are the hub's to close
		e.srv.Close()
	})
	return e
}

func (e *env) dial(t *testing.T) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+key)
	c, resp, err := websocket.DefaultDialer.Dial(e.url, h)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) publish(t *testing.T, m sessions.AgentMessage) {
	t.Helper()
	if err := e.hub.Publish(context.Background(), m); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func step(call, s string) sessions.AgentMessage {
	return sessions.AgentMessage{Type: "step", Call: call, Step: s, Result: "passed"}
}

func send(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	if err := c.WriteJSON(v); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func recv(t *testing.T, c *websocket.Conn) sessions.AgentMessage {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m sessions.AgentMessage
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

// recvSteps reads n messages and returns "call/step" for each.
func recvSteps(t *testing.T, c *websocket.Conn, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		m := recv(t, c)
		out[i] = m.Call + "/" + m.Step
	}
	return out
}

func eq(t *testing.T, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	noKeys := httptest.NewServer(e.hub.Handler(nil))
	defer noKeys.Close()
	tests := []struct {
		name   string
		target string
		header string
		query  string
		want   int
	}{
		{"no key", e.url, "", "", http.StatusUnauthorized},
		{"wrong header key", e.url, "Bearer wrong", "", http.StatusUnauthorized},
		{"wrong query key", e.url, "", "wrong", http.StatusUnauthorized},
		{"key prefix", e.url, "Bearer " + key[:10], "", http.StatusUnauthorized},
		{"basic scheme", e.url, "Basic " + key, "", http.StatusUnauthorized},
		{"right header key", e.url, "Bearer " + key, "", http.StatusSwitchingProtocols},
		{"scheme is case-insensitive", e.url, "bearer " + key, "", http.StatusSwitchingProtocols},
		{"second key", e.url, "Bearer second-agent-key-0123456789", "", http.StatusSwitchingProtocols},
		{"right query key", e.url, "", key, http.StatusSwitchingProtocols},
		{"header wins over query", e.url, "Bearer wrong", key, http.StatusUnauthorized},
		{"no keys configured", "ws" + strings.TrimPrefix(noKeys.URL, "http"), "Bearer " + key, "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.target
			if tt.query != "" {
				u += "?access_token=" + url.QueryEscape(tt.query)
			}
			h := http.Header{}
			if tt.header != "" {
				h.Set("Authorization", tt.header)
			}
			c, resp, err := websocket.DefaultDialer.Dial(u, h)
			if c != nil {
				c.Close()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, tt.want, err)
			}
			if tt.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestOrigin(t *testing.T) {
	e := newEnv(t, agent.WithAllowedOrigins("https://CRM.example.com"))
	host := strings.TrimPrefix(e.srv.URL, "http://")
	tests := []struct {
		origin string
		want   int
	}{
		{"", http.StatusSwitchingProtocols},
		{"http://" + host, http.StatusSwitchingProtocols},
		{"https://crm.example.com", http.StatusSwitchingProtocols},
		{"https://evil.example.com", http.StatusForbidden},
		{"http://crm.example.com", http.StatusForbidden},
		{"null", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			h := http.Header{}
			h.Set("Authorization", "Bearer "+key)
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			c, resp, _ := websocket.DefaultDialer.Dial(e.url, h)
			if c != nil {
				c.Close()
			}
			if resp == nil || resp.StatusCode != tt.want {
				t.Fatalf("response %v, want %d", resp, tt.want)
			}
		})
	}
}

func TestSubscribeOneCallVsAll(t *testing.T) {
	e := newEnv(t)
	e.publish(t, step("A", "a1"))
	e.publish(t, step("B", "b1"))

	one, all := e.dial(t), e.dial(t)
	send(t, one, map[string]any{"type": "subscribe", "call": "A"})
	send(t, all, map[string]any{"type": "subscribe", "all": true})
	eq(t, recvSteps(t, one, 1), []string{"A/a1"})
	eq(t, recvSteps(t, all, 2), []string{"A/a1", "B/b1"})

	e.publish(t, step("B", "b2"))
	e.publish(t, step("A", "a2"))
	e.publish(t, step("A", "a3"))
	eq(t, recvSteps(t, one, 2), []string{"A/a2", "A/a3"}) // b2 never reaches it
	eq(t, recvSteps(t, all, 3), []string{"B/b2", "A/a2", "A/a3"})
}

func TestReplayThenLiveInOrder(t *testing.T) {
	e := newEnv(t)
	const before, during = 200, 300
	for i := range before {
		e.publish(t, step("A", fmt.Sprintf("s%04d", i)))
	}
	c := e.dial(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := before; i < before+during; i++ { // races with the subscription on purpose
			if err := e.hub.Publish(context.Background(), step("A", fmt.Sprintf("s%04d", i))); err != nil {
				t.Error(err)
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	})
	send(t, c, map[string]any{"type": "subscribe", "call": "A"})
	var prev sessions.EventID
	for i := range before + during {
		m := recv(t, c)
		if want := fmt.Sprintf("s%04d", i); m.Step != want {
			t.Fatalf("message %d is %s, want %s (gap, duplicate or reordering)", i, m.Step, want)
		}
		id, err := sessions.ParseEventID(m.ID)
		if err != nil || id.Compare(prev) <= 0 {
			t.Fatalf("message %d id %q not after %v", i, m.ID, prev)
		}
		prev = id
	}
	wg.Wait()
}

func TestResumeAfter(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.publish(t, step("A", fmt.Sprint(i)))
		e.publish(t, step("B", fmt.Sprint(i)))
	}
	first := e.dial(t)
	send(t, first, map[string]any{"type": "subscribe", "call": "A"})
	got := make([]sessions.AgentMessage, 5)
	for i := range got {
		got[i] = recv(t, first)
	}
	first.Close() // the agent drops after reading A/2...

	again := e.dial(t)
	send(t, again, map[string]any{"type": "subscribe", "call": "A", "after": got[2].ID})
	eq(t, recvSteps(t, again, 2), []string{"A/3", "A/4"})
	e.publish(t, step("A", "5"))
	eq(t, recvSteps(t, again, 1), []string{"A/5"})

	all := e.dial(t)
	send(t, all, map[string]any{"type": "subscribe", "all": true, "after": got[4].ID})
	eq(t, recvSteps(t, all, 2), []string{"B/4", "A/5"})

	bad := e.dial(t)
	send(t, bad, map[string]any{"type": "subscribe", "call": "A", "after": "yesterday"})
	if m := recv(t, bad); m.Type != "error" || !strings.Contains(m.Reason, "after") {
		t.Fatalf("bad after: %+v", m)
	}
	send(t, bad, map[string]any{"type": "subscribe", "call": "A", "after": got[3].ID})
	eq(t, recvSteps(t, bad, 2), []string{"A/4", "A/5"})
}

func TestNoDuplicatesAcrossSubscriptions(t *testing.T) {
	e := newEnv(t)
	e.publish(t, step("A", "a1"))
	e.publish(t, step("B", "b1"))
	c := e.dial(t)
	send(t, c, map[string]any{"type": "subscribe", "call": "A"})
	eq(t, recvSteps(t, c, 1), []string{"A/a1"})
	send(t, c, map[string]any{"type": "subscribe", "call": "A"}) // again: nothing replayed twice
	send(t, c, map[string]any{"type": "subscribe", "all": true}) // A already delivered
	eq(t, recvSteps(t, c, 1), []string{"B/b1"})
	send(t, c, map[string]any{"type": "subscribe", "call": "B"}) // covered by all
	e.publish(t, step("A", "a2"))
	e.publish(t, step("B", "b2"))
	eq(t, recvSteps(t, c, 2), []string{"A/a2", "B/b2"})
}

func TestClientErrorsGetReplies(t *testing.T) {
	e := newEnv(t, agent.WithMaxSubscriptions(2))
	c := e.dial(t)
	tests := []struct {
		msg    string
		reason string
	}{
		{`{"type":"hello"}`, "unknown message type"},
		{`{"call":"A"}`, "unknown message type"},
		{`{"type":"subscribe"}`, "subscribe needs either a call id or all:true"},
		{`{"type":"subscribe","call":"A","all":true}`, "subscribe needs either a call id or all:true"},
		{`{"type":"subscribe","call":"has space"}`, "invalid call id"},
		{`{"type":"subscribe","call":"` + strings.Repeat("x", 129) + `"}`, "invalid call id"},
		{`{"type":"subscribe","all":"yes"}`, "invalid message"},
		{`[1,2]`, "invalid message"},
		{`{"type":"subscribe","call":"A"}`, ""},
		{`{"type":"subscribe","call":"B"}`, ""},
		{`{"type":"subscribe","call":"C"}`, "too many subscriptions on one connection"},
	}
	for _, tt := range tests {
		if err := c.WriteMessage(websocket.TextMessage, []byte(tt.msg)); err != nil {
			t.Fatal(err)
		}
		if tt.reason == "" {
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("%s: %v", tt.msg, err)
		}
		var m map[string]string
		if err := json.Unmarshal(data, &m); err != nil || m["type"] != "error" || m["reason"] != tt.reason {
			t.Fatalf("%s: reply %s, want reason %q", tt.msg, data, tt.reason)
		}
	}
	// Still open and subscribed.
	e.publish(t, step("B", "b1"))
	eq(t, recvSteps(t, c, 1), []string{"B/b1"})
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	tests := []struct {
		name string
		typ  int
		data []byte
		code int
	}{
		{"malformed JSON", websocket.TextMessage, []byte(`{"type":"subscribe",`), websocket.CloseInvalidFramePayloadData},
		{"binary frame", websocket.BinaryMessage, []byte{0, 1, 2}, websocket.CloseUnsupportedData},
		{"oversize message", websocket.TextMessage, []byte(`{"type":"subscribe","call":"` + strings.Repeat("x", 64<<10) + `"}`), websocket.CloseMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			good, bad := e.dial(t), e.dial(t)
			send(t, good, map[string]any{"type": "subscribe", "all": true})
			e.publish(t, step("A", "1"))
			eq(t, recvSteps(t, good, 1), []string{"A/1"})

			if err := bad.WriteMessage(tt.typ, tt.data); err != nil {
				t.Fatal(err)
			}
			_ = bad.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err := bad.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != tt.code {
				t.Fatalf("bad connection ended with %v, want close %d", err, tt.code)
			}
			bad.Close()
			waitFor(t, "the bad connection to go", func() bool { return e.hub.Stats().Conns == 1 })

			e.publish(t, step("A", "2"))
			eq(t, recvSteps(t, good, 1), []string{"A/2"})
		})
	}
}

// slowDial connects with a tiny receive buffer and never reads, so the server's writes back
// up quickly.
func slowDial(t *testing.T, e *env) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var nd net.Dialer
		c, err := nd.DialContext(ctx, network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(64 << 10)
		}
		return c, err
	}}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+key)
	c, _, err := d.Dial(e.url, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSlowConsumerDoesNotBlockPublish(t *testing.T) {
	// A write to the slow agent may block for up to 30 s; a Publish that waited on it would
	// take that long. The bound checked below is far under it, and far over scheduling noise
	// on a busy machine under -race.
	e := newEnv(t, agent.WithSendQueue(16), agent.WithWriteTimeout(30*time.Second), agent.WithCloseGrace(200*time.Millisecond))
	slow := slowDial(t, e)
	send(t, slow, map[string]any{"type": "subscribe", "all": true})
	fast := e.dial(t)
	send(t, fast, map[string]any{"type": "subscribe", "all": true})
	// Subscriptions are registered once a replayed message arrives; the slow agent's
	// subscription is ordered before the fast one's by the hub lock.
	e.publish(t, step("A", "start"))
	eq(t, recvSteps(t, fast, 1), []string{"A/start"})

	// Lock-step with the fast agent: its queue never holds more than one message, while the
	// slow agent's TCP buffers fill and its queue overflows.
	const most = 5000
	pad := strings.Repeat("p", 16<<10)
	var worst time.Duration
	worstAt := 0
	began := time.Now()
	n := 0
	for i := range most {
		if e.hub.Stats().SlowDisconnects > 0 {
			break
		}
		n++
		m := step(fmt.Sprintf("C%d", i%10), fmt.Sprint(i))
		m.Reason = pad
		t0 := time.Now()
		e.publish(t, m)
		if d := time.Since(t0); d > worst {
			worst, worstAt = d, i
		}
		if got := recv(t, fast); got.Step != fmt.Sprint(i) {
			t.Fatalf("fast agent got %s, want %d", got.Step, i)
		}
	}
	t.Logf("%d publishes in %v, slowest %v (#%d)", n, time.Since(began), worst, worstAt)
	if worst > 5*time.Second {
		t.Fatalf("a publish took %v: the slow agent stalled it", worst)
	}
	st := e.hub.Stats()
	if st.SlowDisconnects != 1 {
		t.Fatalf("stats %+v, want one slow disconnect", st)
	}
	waitFor(t, "the slow agent to be dropped", func() bool { return e.hub.Stats().Conns == 1 })
	t.Logf("dropped after %v", time.Since(began))

	// The slow agent reads what reached it, then finds the connection closed.
	_ = slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	read := 0
	for {
		if _, _, err := slow.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.CloseTryAgainLater && ce.Code != websocket.CloseAbnormalClosure {
				t.Fatalf("slow agent closed with %d", ce.Code)
			}
			break
		}
		read++
	}
	t.Logf("slow agent read %d messages, then the connection ended (%v since start)", read, time.Since(began))
	if read >= n {
		t.Fatalf("slow agent read %d of %d messages: never disconnected", read, n)
	}
}

func TestKeepalive(t *testing.T) {
	e := newEnv(t, agent.WithKeepalive(50*time.Millisecond, 500*time.Millisecond), agent.WithCloseGrace(50*time.Millisecond))
	alive := e.dial(t) // answers pings while it reads
	silent := e.dial(t)
	// silent never reads, so never answers a ping: the server drops it after the pong timeout.
	readErr := make(chan error, 1)
	go func() {
		_ = alive.SetReadDeadline(time.Now().Add(time.Second))
		_, _, err := alive.ReadMessage()
		readErr <- err
	}()
	waitFor(t, "the silent agent to be dropped", func() bool { return e.hub.Stats().Conns == 1 })
	e.publish(t, step("A", "1")) // alive has no subscription: nothing arrives; it just stays up
	if err := <-readErr; err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("alive agent: %v, want its own read timeout (still connected)", err)
	}
	if e.hub.Stats().Conns != 1 {
		t.Fatal("alive agent was dropped")
	}
	_ = silent
}

func TestCloseIsIdempotentAndJoins(t *testing.T) {
	e := newEnv(t)
	conns := []*websocket.Conn{e.dial(t), e.dial(t), e.dial(t)}
	for _, c := range conns {
		send(t, c, map[string]any{"type": "subscribe", "all": true})
	}
	e.publish(t, step("A", "1"))
	for _, c := range conns {
		recv(t, c)
	}
	// Agents read until the server closes, as a client does.
	var wg sync.WaitGroup
	codes := make([]int, len(conns))
	for i, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err := c.ReadMessage()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				codes[i] = ce.Code
			}
		})
	}
	var closers sync.WaitGroup
	for range 3 {
		closers.Go(e.hub.Close)
	}
	closers.Wait()
	e.hub.Close()
	wg.Wait()
	for i, code := range codes {
		if code != websocket.CloseGoingAway {
			t.Errorf("agent %d close code %d, want 1001", i, code)
		}
	}
	if st := e.hub.Stats(); st.Conns != 0 {
		t.Fatalf("after Close: %+v", st)
	}
	if err := e.hub.Publish(context.Background(), step("A", "2")); !errors.Is(err, agent.ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+key)
	_, resp, _ := websocket.DefaultDialer.Dial(e.url, h)
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after Close: %v", resp)
	}
}

func TestMessageJSON(t *testing.T) {
	e := newEnv(t)
	c := e.dial(t)
	send(t, c, map[string]any{"type": "subscribe", "call": "CA1"})
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	e.publish(t, sessions.AgentMessage{Type: "call", Call: "CA1", At: at, State: "started",
		Caller: "***-***-0100", Transport: "twilio", Request: "delete", Lang: "en-US"})
	e.publish(t, sessions.AgentMessage{Type: "verified", Call: "CA1", At: at, Level: "reasonable",
		Request: "delete", AMR: []string{"kba"}, Token: "t.o.k"})
	want := []string{
		`{"id":"*","type":"call","call":"CA1","at":"2025-03-01T12:00:00Z","state":"started","caller":"***-***-0100","transport":"twilio","request":"delete","lang":"en-US"}`,
		`{"id":"*","type":"verified","call":"CA1","at":"2025-03-01T12:00:00Z","request":"delete","level":"reasonable","amr":["kba"],"token":"t.o.k"}`,
	}
	for _, w := range want {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		if _, err := sessions.ParseEventID(m["id"].(string)); err != nil {
			t.Fatalf("id: %v", err)
		}
		got := strings.Replace(string(data), `"id":"`+m["id"].(string)+`"`, `"id":"*"`, 1)
		if got != w {
			t.Fatalf("got  %s\nwant %s", got, w)
		}
	}
}

// failingLog is a Log whose store is down.
type failingLog struct{}

func (failingLog) Append(context.Context, sessions.AgentMessage) (sessions.AgentMessage, error) {
	return sessions.AgentMessage{}, sessions.ErrUnavailable
}

func (failingLog) Since(context.Context, string, string) ([]sessions.AgentMessage, error) {
	return nil, sessions.ErrUnavailable
}

func TestStoreDown(t *testing.T) {
	hub := agent.NewHub(zaptest.NewLogger(t), failingLog{})
	srv := httptest.NewServer(hub.Handler([]string{key}))
	defer srv.Close()
	defer hub.Close()
	if err := hub.Publish(context.Background(), step("A", "1")); !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("Publish with the store down: %v, want ErrUnavailable (fail closed)", err)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+key)
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send(t, c, map[string]any{"type": "subscribe", "call": "A"})
	if m := recv(t, c); m.Type != "error" || m.Reason != "message log unavailable" {
		t.Fatalf("subscribe with the store down: %+v", m)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := hub.Publish(cancelled, step("A", "1")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled context: %v", err)
	}
}
