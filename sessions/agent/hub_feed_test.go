package agent_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/agent"
)

// plainLog hides Memory's Watch: the hub then fans out from Publish itself.
type plainLog struct{ m *sessions.Memory }

func (p plainLog) Append(ctx context.Context, m sessions.AgentMessage) (sessions.AgentMessage, error) {
	return p.m.Append(ctx, m)
}

func (p plainLog) Since(ctx context.Context, call, after string) ([]sessions.AgentMessage, error) {
	return p.m.Since(ctx, call, after)
}

// hubEnv serves a hub on its own listener.
func hubEnv(t *testing.T, store agent.Log, opts ...agent.Option) (*agent.Hub, string) {
	t.Helper()
	hub := agent.NewHub(zaptest.NewLogger(t), store)
	srv := httptest.NewServer(hub.Handler([]string{key}, opts...))
	t.Cleanup(func() {
		hub.Close()
		srv.Close()
	})
	return hub, "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dialURL(t *testing.T, u string) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+key)
	c, resp, err := websocket.DefaultDialer.Dial(u, h)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func publishTo(t *testing.T, hub *agent.Hub, call string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := hub.Publish(context.Background(), step(call, fmt.Sprint(i))); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
}

func wantSteps(call string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s/%d", call, i))
	}
	return out
}

// TestPlainLogFansOutFromPublish keeps the behaviour with a log that cannot be watched.
func TestPlainLogFansOutFromPublish(t *testing.T) {
	hub, u := hubEnv(t, plainLog{sessions.NewMemory()})
	publishTo(t, hub, "A", 0, 3)
	c := dialURL(t, u)
	send(t, c, map[string]any{"type": "subscribe", "call": "A"})
	eq(t, recvSteps(t, c, 3), wantSteps("A", 0, 3))
	publishTo(t, hub, "A", 3, 5)
	eq(t, recvSteps(t, c, 2), wantSteps("A", 3, 5))
	if st := hub.Stats(); st.Published != 5 || st.Delivered != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// gatedLog blocks Since until released, reading the log before or after the wait.
type gatedLog struct {
	*sessions.Memory
	readFirst bool
	entered   chan struct{}
	release   chan struct{}
}

func (g *gatedLog) Since(ctx context.Context, call, after string) ([]sessions.AgentMessage, error) {
	var msgs []sessions.AgentMessage
	var err error
	if g.readFirst {
		msgs, err = g.Memory.Since(ctx, call, after)
	}
	close(g.entered)
	<-g.release
	if !g.readFirst {
		msgs, err = g.Memory.Since(ctx, call, after)
	}
	return msgs, err
}

// TestLiveMessagesHeldDuringReplay publishes while a subscription's replay is being read:
// the agent gets every message once, in order, whether the replay saw them or not.
func TestLiveMessagesHeldDuringReplay(t *testing.T) {
	for _, readFirst := range []bool{true, false} {
		for _, all := range []bool{false, true} {
			t.Run(fmt.Sprintf("readFirst=%v/all=%v", readFirst, all), func(t *testing.T) {
				g := &gatedLog{Memory: sessions.NewMemory(), readFirst: readFirst,
					entered: make(chan struct{}), release: make(chan struct{})}
				hub, u := hubEnv(t, g)
				publishTo(t, hub, "A", 0, 5)
				c := dialURL(t, u)
				sub := map[string]any{"type": "subscribe", "call": "A"}
				if all {
					sub = map[string]any{"type": "subscribe", "all": true}
				}
				send(t, c, sub)
				<-g.entered
				publishTo(t, hub, "A", 5, 10)
				publishTo(t, hub, "B", 0, 1)
				waitFor(t, "the pump to pass the new messages", func() bool { return hub.Stats().Delivered >= 6 })
				close(g.release)
				want := wantSteps("A", 0, 10)
				if all {
					want = append(want, "B/0")
				}
				eq(t, recvSteps(t, c, len(want)), want)
				publishTo(t, hub, "A", 10, 11)
				eq(t, recvSteps(t, c, 1), []string{"A/10"})
			})
		}
	}
}

// TestHeldMessagesDoNotCountAsSlow: a burst larger than the send queue, held during a slow
// replay, is the store's doing, not the agent's: it is delivered, and the agent stays.
func TestHeldMessagesDoNotCountAsSlow(t *testing.T) {
	g := &gatedLog{Memory: sessions.NewMemory(), entered: make(chan struct{}), release: make(chan struct{})}
	hub, u := hubEnv(t, g, agent.WithSendQueue(4))
	c := dialURL(t, u)
	send(t, c, map[string]any{"type": "subscribe", "call": "A"})
	<-g.entered
	publishTo(t, hub, "A", 0, 20)
	waitFor(t, "the pump", func() bool { return hub.Stats().Delivered >= 20 })
	close(g.release)
	eq(t, recvSteps(t, c, 20), wantSteps("A", 0, 20))
	if st := hub.Stats(); st.SlowDisconnects != 0 || st.Conns != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// flakyLog's feed fails its first reads, as a shared store does while it is down.
type flakyLog struct {
	*sessions.Memory
	failures int
}

type flakyFeed struct {
	sessions.AgentFeed
	left atomic.Int64
}

func (f *flakyLog) Watch(ctx context.Context) (sessions.AgentFeed, error) {
	feed, err := f.Memory.Watch(ctx)
	if err != nil {
		return nil, err
	}
	ff := &flakyFeed{AgentFeed: feed}
	ff.left.Store(int64(f.failures))
	return ff, nil
}

func (f *flakyFeed) Next(ctx context.Context) ([]sessions.AgentMessage, error) {
	if f.left.Add(-1) >= 0 {
		return nil, fmt.Errorf("store down: %w", sessions.ErrUnavailable)
	}
	return f.AgentFeed.Next(ctx)
}

func TestFeedErrorsAreRetriedWithoutLoss(t *testing.T) {
	hub, u := hubEnv(t, &flakyLog{Memory: sessions.NewMemory(), failures: 4})
	c := dialURL(t, u)
	send(t, c, map[string]any{"type": "subscribe", "call": "A"})
	time.Sleep(20 * time.Millisecond) // let the subscription register (empty replay)
	publishTo(t, hub, "A", 0, 5)
	eq(t, recvSteps(t, c, 5), wantSteps("A", 0, 5))
	if st := hub.Stats(); st.FeedErrors != 4 {
		t.Fatalf("stats %+v, want 4 feed errors", st)
	}
}

// TestTwoHubsOneLog: hubs sharing a log deliver each other's messages, and an agent resumes
// on the other hub after the last id it saw, with nothing lost or repeated.
func TestTwoHubsOneLog(t *testing.T) {
	shared := sessions.NewMemory()
	hubA, uA := hubEnv(t, shared)
	hubB, uB := hubEnv(t, shared)
	onB := dialURL(t, uB)
	send(t, onB, map[string]any{"type": "subscribe", "call": "A"})
	allB := dialURL(t, uB)
	send(t, allB, map[string]any{"type": "subscribe", "all": true})
	time.Sleep(20 * time.Millisecond)
	publishTo(t, hubA, "A", 0, 3)
	publishTo(t, hubB, "A", 3, 4)
	publishTo(t, hubA, "C", 0, 1)
	var last sessions.AgentMessage
	for i, want := range wantSteps("A", 0, 4) {
		last = recv(t, onB)
		if got := last.Call + "/" + last.Step; got != want {
			t.Fatalf("message %d: %s, want %s", i, got, want)
		}
	}
	eq(t, recvSteps(t, allB, 5), append(wantSteps("A", 0, 4), "C/0"))
	onB.Close()
	publishTo(t, hubA, "A", 4, 6)
	onA := dialURL(t, uA)
	send(t, onA, map[string]any{"type": "subscribe", "call": "A", "after": last.ID})
	eq(t, recvSteps(t, onA, 2), wantSteps("A", 4, 6))
	publishTo(t, hubB, "A", 6, 7)
	eq(t, recvSteps(t, onA, 1), []string{"A/6"})
	if a, b := hubA.Stats(), hubB.Stats(); a.Published != 6 || b.Published != 2 {
		t.Fatalf("published A %d B %d", a.Published, b.Published)
	}
}

// TestCloseStopsThePump checks that Close returns with a feed blocked in Next.
func TestCloseStopsThePump(t *testing.T) {
	hub := agent.NewHub(zaptest.NewLogger(t), sessions.NewMemory())
	done := make(chan struct{})
	var once sync.Once
	go func() { hub.Close(); once.Do(func() { close(done) }) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := hub.Publish(context.Background(), step("A", "1")); !errors.Is(err, agent.ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
}

// TestHeldOverflowDisconnects: a subscription whose replay read stalls while more than the
// hold bound arrives is disconnected with 1013 and resumes later.
func TestHeldOverflowDisconnects(t *testing.T) {
	g := &gatedLog{Memory: sessions.NewMemory(sessions.WithLimits(0, 0, 20000)),
		entered: make(chan struct{}), release: make(chan struct{})}
	hub, u := hubEnv(t, g)
	c := dialURL(t, u)
	send(t, c, map[string]any{"type": "subscribe", "call": "A"})
	<-g.entered
	const n = 8192 + 1
	publishTo(t, hub, "A", 0, n)
	waitFor(t, "the pump", func() bool { return hub.Stats().Delivered >= n })
	close(g.release)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseTryAgainLater {
			t.Fatalf("ended with %v, want close 1013", err)
		}
		break
	}
	if hub.Stats().SlowDisconnects != 1 {
		t.Fatalf("stats %+v", hub.Stats())
	}
}
