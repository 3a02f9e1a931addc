package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions"
)

func TestReplayConsume(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m := sessions.NewMemory(sessions.WithClock(clk.Now))
	type step struct {
		advance time.Duration
		id      string
		until   time.Duration // from the step's now
		first   bool
	}
	steps := []step{
		{0, "j1", 5 * time.Minute, true},
		{0, "j1", 5 * time.Minute, false},
		{0, "j2", 5 * time.Minute, true},
		{4 * time.Minute, "j1", 5 * time.Minute, false}, // a later until does not matter
		{time.Minute, "j1", 5 * time.Minute, true},      // expired: forgotten
		{0, "j3", -time.Hour, true},                     // past deadline: held MinReplayTTL
		{sessions.MinReplayTTL - time.Millisecond, "j3", -time.Hour, false},
		{time.Millisecond, "j3", -time.Hour, true},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		first, err := m.Consume(ctx, s.id, clk.Now().Add(s.until))
		if err != nil || first != s.first {
			t.Fatalf("step %d: Consume(%s) = %v, %v; want %v", i, s.id, first, err, s.first)
		}
	}
	if _, err := m.Consume(ctx, "", clk.Now().Add(time.Minute)); !errors.Is(err, sessions.ErrBadKey) {
		t.Fatalf("empty id: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Consume(cancelled, "x", clk.Now().Add(time.Minute)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestReplayConcurrentExactlyOnce(t *testing.T) {
	ctx := context.Background()
	m := sessions.NewMemory()
	var firsts atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			first, err := m.Consume(ctx, "same", time.Now().Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if first {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if firsts.Load() != 1 {
		t.Fatalf("%d callers got first", firsts.Load())
	}
}

func TestReplayCapFailsClosed(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m := sessions.NewMemory(sessions.WithClock(clk.Now), sessions.WithReplayLimit(2))
	for _, id := range []string{"a", "b"} {
		if first, err := m.Consume(ctx, id, clk.Now().Add(time.Minute)); err != nil || !first {
			t.Fatal(first, err)
		}
	}
	if _, err := m.Consume(ctx, "c", clk.Now().Add(time.Minute)); !errors.Is(err, sessions.ErrFull) || !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("full: %v", err)
	}
	if first, err := m.Consume(ctx, "a", clk.Now().Add(time.Minute)); err != nil || first {
		t.Fatalf("held id while full: %v %v", first, err)
	}
	clk.Advance(time.Minute)
	if first, err := m.Consume(ctx, "c", clk.Now().Add(time.Minute)); err != nil || !first {
		t.Fatalf("after expiry: %v %v", first, err)
	}
}

// next reads one batch with a deadline.
func next(t *testing.T, f sessions.AgentFeed) []sessions.AgentMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, err := f.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return msgs
}

func steps(ms []sessions.AgentMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Call + "/" + m.Step
	}
	return out
}

func TestWatchFeed(t *testing.T) {
	ctx := context.Background()
	m := sessions.NewMemory()
	if _, err := m.Append(ctx, sessions.AgentMessage{Type: "step", Call: "A", Step: "before"}); err != nil {
		t.Fatal(err)
	}
	f, err := m.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	for i := range 3 {
		for _, c := range []string{"A", "B"} {
			s, err := m.Append(ctx, sessions.AgentMessage{Type: "step", Call: c, Step: fmt.Sprint(i)})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, s.Call+"/"+s.Step)
		}
	}
	got := next(t, f)
	if fmt.Sprint(steps(got)) != fmt.Sprint(want) {
		t.Fatalf("feed %v, want %v (nothing from before Watch)", steps(got), want)
	}
	got[0].AMR = append(got[0].AMR, "x") // the feed hands out copies
	// Next blocks until something is appended.
	done := make(chan []sessions.AgentMessage)
	go func() { done <- next(t, f) }()
	select {
	case <-done:
		t.Fatal("Next returned with nothing appended")
	case <-time.After(20 * time.Millisecond):
	}
	if _, err := m.Append(ctx, sessions.AgentMessage{Type: "step", Call: "C", Step: "late"}); err != nil {
		t.Fatal(err)
	}
	if got := <-done; fmt.Sprint(steps(got)) != "[C/late]" {
		t.Fatalf("late: %v", steps(got))
	}
	// Close unblocks a waiting Next, and later calls fail with ErrClosed.
	errc := make(chan error)
	go func() { _, err := f.Next(ctx); errc <- err }()
	time.Sleep(10 * time.Millisecond)
	f.Close()
	f.Close()
	if err := <-errc; !errors.Is(err, sessions.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	// A cancelled context ends Next.
	g, _ := m.Watch(ctx)
	defer g.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := g.Next(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with an expired context: %v", err)
	}
}

// TestWatchOverflowLosesNothing fills a feed's queue past its bound: the reader is then served
// from the log, in order, without a gap or a duplicate.
func TestWatchOverflowLosesNothing(t *testing.T) {
	ctx := context.Background()
	m := sessions.NewMemory(sessions.WithLimits(0, 0, 10000))
	sessions.SetFeedQueue(m, 8)
	f, _ := m.Watch(ctx)
	defer f.Close()
	var got []string
	appendN := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := m.Append(ctx, sessions.AgentMessage{Type: "step", Call: fmt.Sprint("C", i%3), Step: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(0, 5)
	for _, s := range steps(next(t, f)) {
		got = append(got, s)
	}
	appendN(5, 100) // overflows
	for len(got) < 100 {
		got = append(got, steps(next(t, f))...)
		appendN(len(got)+1000, len(got)+1000) // nothing
	}
	for i, s := range got {
		if want := fmt.Sprintf("C%d/%d", i%3, i); s != want {
			t.Fatalf("message %d is %s, want %s", i, s, want)
		}
	}
	appendN(100, 103)
	if s := steps(next(t, f)); fmt.Sprint(s) != "[C1/100 C2/101 C0/102]" {
		t.Fatalf("after overflow: %v", s)
	}
}
