package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/redis"
	"github.com/callproof/callproof/sessions/redis/redistest"
)

func stepMsg(call, step string) sessions.AgentMessage {
	return sessions.AgentMessage{Type: "step", Call: call, Step: step, Result: "passed"}
}

func names(ms []sessions.AgentMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Call + "/" + m.Step
	}
	return out
}

func appendAll(t *testing.T, s *redis.Store, msgs ...sessions.AgentMessage) []sessions.AgentMessage {
	t.Helper()
	out := make([]sessions.AgentMessage, len(msgs))
	for i, m := range msgs {
		var err error
		if out[i], err = s.Append(context.Background(), m); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	return out
}

func TestAgentLogAppendSince(t *testing.T) {
	addr := redistest.Addr(t)
	prefix := redistest.Prefix()
	a, b := open(t, addr, prefix), open(t, addr, prefix)
	rc := raw(t, addr)
	ctx := context.Background()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	stored := appendAll(t, a,
		sessions.AgentMessage{Type: "call", Call: "A", State: "started", Caller: "***0100", At: at},
		stepMsg("B", "b1"),
		sessions.AgentMessage{Type: "verified", Call: "A", Level: "reasonable", AMR: []string{"kba"}, Token: "t.o.k"},
	)
	stored = append(stored, appendAll(t, b, stepMsg("A", "a3"), stepMsg("B", "b2"))...)

	// Ids are the stream entry ids, in order, and the message comes back as stored.
	entries, err := rc.XRange(ctx, prefix+"{agent}:call:A", "-", "+").Result()
	if err != nil || len(entries) != 3 || entries[0].ID != stored[0].ID || entries[2].ID != stored[3].ID {
		t.Fatalf("stream %v %v", entries, err)
	}
	var prev sessions.EventID
	for i, m := range stored {
		id, err := sessions.ParseEventID(m.ID)
		if err != nil || (i > 0 && id.Compare(prev) <= 0) {
			t.Fatalf("id %q after %v", m.ID, prev)
		}
		prev = id
		if m.At.IsZero() {
			t.Fatalf("At not set on %v", m)
		}
	}
	if !stored[0].At.Equal(at) {
		t.Fatalf("At changed: %v", stored[0].At)
	}
	got, err := b.Since(ctx, "A", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].Token != "t.o.k" || fmt.Sprint(got[1].AMR) != "[kba]" || got[0].Caller != "***0100" ||
		!got[0].At.Equal(at) || got[1].ID != stored[2].ID {
		t.Fatalf("Since(A) = %+v", got)
	}
	tests := []struct {
		name, call, after string
		want              []string
	}{
		{"one call", "A", "", []string{"A/", "A/", "A/a3"}},
		{"one call after", "A", stored[2].ID, []string{"A/a3"}},
		{"after another call's id", "B", stored[2].ID, []string{"B/b2"}},
		{"after the last", "A", stored[3].ID, []string{}},
		{"unknown call", "C", "", []string{}},
		{"every call in id order", "", "", []string{"A/", "B/b1", "A/", "A/a3", "B/b2"}},
		{"every call after", "", stored[1].ID, []string{"A/", "A/a3", "B/b2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Since(ctx, tt.call, tt.after)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(names(got)) != fmt.Sprint(tt.want) {
				t.Fatalf("got %v, want %v", names(got), tt.want)
			}
		})
	}
	if _, err := a.Since(ctx, "A", "yesterday"); !errors.Is(err, sessions.ErrBadEventID) {
		t.Fatalf("bad after: %v", err)
	}
	for _, m := range []sessions.AgentMessage{{Type: "step"}, {Call: "A"}, {Type: "step", Call: strings.Repeat("c", 257)}} {
		if _, err := a.Append(ctx, m); !errors.Is(err, sessions.ErrBadMessage) {
			t.Fatalf("Append(%v): %v", m, err)
		}
	}
}

func TestAgentLogTTLAndCap(t *testing.T) {
	addr := redistest.Addr(t)
	prefix := redistest.Prefix()
	s := open(t, addr, prefix, redis.WithRetention(2*time.Minute), redis.WithIdleExpiry(time.Hour),
		redis.WithMaxMessagesPerCall(5))
	rc := raw(t, addr)
	ctx := context.Background()
	appendAll(t, s, sessions.AgentMessage{Type: "call", Call: "A", State: "started"})
	if ttl := rc.PTTL(ctx, prefix+"{agent}:call:A").Val(); !near(ttl, time.Hour, 5*time.Second) {
		t.Fatalf("live call TTL %v, want the idle expiry", ttl)
	}
	for i := range 8 {
		appendAll(t, s, stepMsg("A", fmt.Sprint(i)))
	}
	appendAll(t, s, sessions.AgentMessage{Type: "call", Call: "A", State: "ended"})
	if ttl := rc.PTTL(ctx, prefix+"{agent}:call:A").Val(); !near(ttl, 2*time.Minute, 5*time.Second) {
		t.Fatalf("ended call TTL %v, want the retention", ttl)
	}
	got, err := s.Since(ctx, "A", "")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(names(got)) != "[A/4 A/5 A/6 A/7 A/]" {
		t.Fatalf("capped log %v", names(got))
	}
	if ttl := rc.PTTL(ctx, prefix+"{agent}:calls").Val(); ttl <= time.Hour {
		t.Fatalf("index TTL %v", ttl)
	}
}

// collect reads f until n messages arrived (retrying transient errors), or fails.
func collect(t *testing.T, f sessions.AgentFeed, n int, within time.Duration) []sessions.AgentMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var out []sessions.AgentMessage
	for len(out) < n {
		msgs, err := f.Next(ctx)
		switch {
		case err == nil:
			out = append(out, msgs...)
		case errors.Is(err, sessions.ErrUnavailable):
			time.Sleep(20 * time.Millisecond)
		default:
			t.Fatalf("Next after %d of %d messages: %v", len(out), n, err)
		}
	}
	if len(out) != n {
		t.Fatalf("got %d messages, want %d: %v", len(out), n, names(out))
	}
	return out
}

// perCall splits names by call, keeping order.
func perCall(ms []sessions.AgentMessage) map[string][]string {
	out := map[string][]string{}
	for _, m := range ms {
		out[m.Call] = append(out[m.Call], m.Step)
	}
	return out
}

// TestWatchAcrossNodes: a feed on node B sees what nodes A and B append, per call in order,
// exactly once; an entry whose notification was lost arrives through the catch-up, and a
// repeated notification delivers nothing twice.
func TestWatchAcrossNodes(t *testing.T) {
	addr := redistest.Addr(t)
	prefix := redistest.Prefix()
	a := open(t, addr, prefix)
	b := open(t, addr, prefix, redis.WithCatchUp(100*time.Millisecond))
	rc := raw(t, addr)
	ctx := context.Background()
	appendAll(t, a, stepMsg("OLD", "before")) // within the 30 s lookback: may or may not come
	f, err := b.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The first Next subscribes and catches up.
	first := collect(t, f, 1, 5*time.Second)
	if names(first)[0] != "OLD/before" {
		t.Fatalf("first %v", names(first))
	}
	var want []string
	for i := range 30 {
		s := []*redis.Store{a, b}[i%2]
		call := fmt.Sprint("C", i%3)
		appendAll(t, s, stepMsg(call, fmt.Sprint(i)))
		want = append(want, call+"/"+fmt.Sprint(i))
	}
	got := collect(t, f, 30, 10*time.Second)
	byCall := perCall(got)
	for c, steps := range byCall {
		var w []string
		for _, n := range want {
			if strings.HasPrefix(n, c+"/") {
				w = append(w, strings.TrimPrefix(n, c+"/"))
			}
		}
		if fmt.Sprint(steps) != fmt.Sprint(w) {
			t.Fatalf("call %s: %v, want %v", c, steps, w)
		}
	}

	// A lost notification: the entry and the index are written, nothing is published.
	data, _ := json.Marshal(stepMsg("LOST", "silent"))
	id, err := rc.XAdd(ctx, &goredis.XAddArgs{Stream: prefix + "{agent}:call:LOST", Values: []any{"m", data}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	eid, _ := sessions.ParseEventID(id)
	rc.ZAdd(ctx, prefix+"{agent}:calls", goredis.Z{Score: float64(eid.Millis), Member: "LOST"})
	began := time.Now()
	got = collect(t, f, 1, 5*time.Second)
	if fmt.Sprint(names(got)) != "[LOST/silent]" || got[0].ID != id {
		t.Fatalf("lost notification: %v", names(got))
	}
	t.Logf("caught up on a lost notification in %v", time.Since(began))

	// A repeated notification delivers nothing twice; the next message still comes.
	rc.Publish(ctx, prefix+"agent:wake", id+" LOST")
	appendAll(t, a, stepMsg("LOST", "after"))
	if got := collect(t, f, 1, 5*time.Second); fmt.Sprint(names(got)) != "[LOST/after]" {
		t.Fatalf("after a duplicate notification: %v", names(got))
	}
	// Close unblocks a waiting Next.
	errc := make(chan error, 1)
	go func() { _, err := f.Next(ctx); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	f.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, sessions.ErrClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
}

// TestWatchSurvivesRestart: the feed reports the outage as ErrUnavailable and, once the server
// is back, delivers what is appended, without being recreated.
func TestWatchSurvivesRestart(t *testing.T) {
	srv := redistest.Start(t)
	prefix := redistest.Prefix()
	a := open(t, srv.Addr, prefix)
	b := open(t, srv.Addr, prefix, redis.WithCatchUp(100*time.Millisecond))
	f, err := b.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	appendAll(t, a, stepMsg("A", "1"))
	if got := collect(t, f, 1, 5*time.Second); fmt.Sprint(names(got)) != "[A/1]" {
		t.Fatalf("before: %v", names(got))
	}
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = f.Next(ctx)
	cancel()
	if !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("Next with the server down: %v", err)
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := a.Append(context.Background(), stepMsg("A", "2")); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := collect(t, f, 1, 10*time.Second); fmt.Sprint(names(got)) != "[A/2]" {
		t.Fatalf("after the restart: %v", names(got))
	}
}

// TestEventIDsOrderedAcrossCallsAndNodes appends concurrently from two nodes to many calls:
// every id is unique, the all-calls replay is strictly increasing, and resuming it after any
// id returns exactly the rest. Losing the last-id key does not break the order of a stream.
func TestEventIDsOrderedAcrossCallsAndNodes(t *testing.T) {
	addr := redistest.Addr(t)
	prefix := redistest.Prefix()
	nodes := []*redis.Store{open(t, addr, prefix), open(t, addr, prefix)}
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				m := stepMsg(fmt.Sprint("C", (w+i)%5), fmt.Sprintf("%d.%d", w, i))
				if _, err := nodes[w%2].Append(ctx, m); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	all, err := nodes[0].Since(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 200 {
		t.Fatalf("%d messages, want 200", len(all))
	}
	for i := 1; i < len(all); i++ {
		a, _ := sessions.ParseEventID(all[i-1].ID)
		b, _ := sessions.ParseEventID(all[i].ID)
		if a.Compare(b) >= 0 {
			t.Fatalf("ids %s then %s", all[i-1].ID, all[i].ID)
		}
	}
	for _, k := range []int{0, 1, 57, 120, 198, 199} {
		rest, err := nodes[1].Since(ctx, "", all[k].ID)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(names(rest)) != fmt.Sprint(names(all[k+1:])) {
			t.Fatalf("resume after #%d: %d messages, want %d", k, len(rest), len(all)-k-1)
		}
	}
	raw(t, addr).Del(ctx, prefix+"{agent}:last")
	last := all[len(all)-1]
	next := appendAll(t, nodes[0], stepMsg(last.Call, "after-loss"))[0]
	a, _ := sessions.ParseEventID(last.ID)
	b, _ := sessions.ParseEventID(next.ID)
	if b.Compare(a) <= 0 {
		t.Fatalf("id %s after losing the last-id key, not after %s", next.ID, last.ID)
	}
}

// With WithSealKey a verified call's token is sealed in Redis and comes back whole from any
// node with the same key; a node with another key (or none) delivers the message without it.
func TestAgentLogSealsTokens(t *testing.T) {
	addr, prefix := redistest.Addr(t), redistest.Prefix()
	key := []byte("0123456789abcdef0123456789abcdef")
	a, b := open(t, addr, prefix, redis.WithSealKey(key)), open(t, addr, prefix, redis.WithSealKey(key))
	other, none := open(t, addr, prefix, redis.WithSealKey([]byte("another deployment's key"))), open(t, addr, prefix)
	const tok = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJjdXNfYWRhIn0.c2lnbmF0dXJl"
	appendAll(t, a, sessions.AgentMessage{Type: "verified", Call: "S1", Level: "reasonable", Token: tok}, stepMsg("S1", "ask_dob"))
	ctx := context.Background()
	entries, err := raw(t, addr).XRange(ctx, prefix+"{agent}:call:S1", "-", "+").Result()
	if err != nil || len(entries) != 2 {
		t.Fatalf("XRANGE: %v %v", entries, err)
	}
	if stored := fmt.Sprint(entries[0].Values); strings.Contains(stored, tok) || strings.Contains(stored, "c2lnbmF0dXJl") ||
		!strings.Contains(stored, "sealed.v1.") {
		t.Fatalf("the token is stored in clear: %s", stored)
	}
	for name, s := range map[string]*redis.Store{"same node": a, "other node": b} {
		got, err := s.Since(ctx, "S1", "")
		if err != nil || len(got) != 2 || got[0].Token != tok || got[0].Level != "reasonable" {
			t.Fatalf("%s: Since = %+v, %v; want the token back", name, got, err)
		}
	}
	for name, s := range map[string]*redis.Store{"another key": other, "no key": none} {
		got, err := s.Since(ctx, "S1", "")
		if err != nil || len(got) != 2 || got[0].Type != "verified" || got[0].Token != "" {
			t.Fatalf("%s: Since = %+v, %v; want the message without its token", name, got, err)
		}
	}
}
