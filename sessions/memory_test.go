package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions"
)

// clock is a manual clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var rule = sessions.Rule{Max: 3, Window: 10 * time.Minute, LockFor: 15 * time.Minute}

func TestAttemptsLockout(t *testing.T) {
	type step struct {
		advance time.Duration
		op      string // fail, check, reset
		want    sessions.LockState
	}
	locked := func(retry time.Duration) sessions.LockState {
		return sessions.LockState{Locked: true, Failures: 3, RetryAfter: retry}
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"unknown key is clear", []step{{0, "check", sessions.LockState{}}}},
		{"counts below max", []step{
			{0, "fail", sessions.LockState{Failures: 1}},
			{time.Minute, "fail", sessions.LockState{Failures: 2}},
			{0, "check", sessions.LockState{Failures: 2}},
		}},
		{"locks at max", []step{
			{0, "fail", sessions.LockState{Failures: 1}},
			{0, "fail", sessions.LockState{Failures: 2}},
			{0, "fail", locked(15 * time.Minute)},
			{5 * time.Minute, "check", locked(10 * time.Minute)},
		}},
		{"failures while locked do not extend the lock", []step{
			{0, "fail", sessions.LockState{Failures: 1}},
			{0, "fail", sessions.LockState{Failures: 2}},
			{0, "fail", locked(15 * time.Minute)},
			{time.Minute, "fail", locked(14 * time.Minute)},
			{14 * time.Minute, "check", sessions.LockState{}},
		}},
		{"lock expires then counting restarts", []step{
			{0, "fail", sessions.LockState{Failures: 1}},
			{0, "fail", sessions.LockState{Failures: 2}},
			{0, "fail", locked(15 * time.Minute)},
			{15 * time.Minute, "fail", sessions.LockState{Failures: 1}},
		}},
		{"window starts at the first failure", []step{
			{0, "fail", sessions.LockState{Failures: 1}},
			{9 * time.Minute, "fail", sessions.LockState{Failures: 2}},
			{time.Minute, "check", sessions.LockState{}},
			{0, "fail", sessions.LockState{Failures: 1}},
		}},
		{"reset clears a lock", []step{
			{0, "fail", sessions.LockState{Failures: 1}},
			{0, "fail", sessions.LockState{Failures: 2}},
			{0, "fail", locked(15 * time.Minute)},
			{0, "reset", sessions.LockState{}},
			{0, "check", sessions.LockState{}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			m := sessions.NewMemory(sessions.WithClock(clk.Now))
			for i, s := range tt.steps {
				clk.Advance(s.advance)
				var got sessions.LockState
				var err error
				switch s.op {
				case "fail":
					got, err = m.Fail(ctx, "k1", rule)
				case "check":
					got, err = m.Check(ctx, "k1")
				case "reset":
					err = m.Reset(ctx, "k1")
				}
				if err != nil {
					t.Fatalf("step %d %s: %v", i, s.op, err)
				}
				if got != s.want {
					t.Fatalf("step %d %s: got %+v, want %+v", i, s.op, got, s.want)
				}
			}
			if st, _ := m.Check(ctx, "other"); st != (sessions.LockState{}) {
				t.Fatalf("other key affected: %+v", st)
			}
		})
	}
}

func TestAttemptsErrors(t *testing.T) {
	ctx := context.Background()
	m := sessions.NewMemory()
	tests := []struct {
		name string
		key  string
		r    sessions.Rule
		want error
	}{
		{"empty key", "", rule, sessions.ErrBadKey},
		{"zero max", "k", sessions.Rule{Window: time.Minute, LockFor: time.Minute}, sessions.ErrBadRule},
		{"zero window", "k", sessions.Rule{Max: 1, LockFor: time.Minute}, sessions.ErrBadRule},
		{"zero lock", "k", sessions.Rule{Max: 1, Window: time.Minute}, sessions.ErrBadRule},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.Fail(ctx, tt.key, tt.r); !errors.Is(err, tt.want) {
				t.Fatalf("Fail: %v, want %v", err, tt.want)
			}
		})
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Check(cancelled, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Check on cancelled ctx: %v", err)
	}
}

func TestAttemptsConcurrentFailIsAtomic(t *testing.T) {
	ctx := context.Background()
	m := sessions.NewMemory()
	r := sessions.Rule{Max: 1000, Window: time.Hour, LockFor: time.Hour}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 10 {
				if _, err := m.Fail(ctx, "k", r); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st, _ := m.Check(ctx, "k")
	if st.Failures != 500 || st.Locked {
		t.Fatalf("after 500 concurrent failures: %+v", st)
	}
}

func TestAttemptsSizeCap(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m := sessions.NewMemory(sessions.WithClock(clk.Now), sessions.WithLimits(2, 0, 0))
	for _, k := range []string{"a", "b"} {
		if _, err := m.Fail(ctx, k, rule); err != nil {
			t.Fatal(err)
		}
	}
	// Full and nothing expired: fail closed rather than forget a counter.
	_, err := m.Fail(ctx, "c", rule)
	if !errors.Is(err, sessions.ErrFull) || !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("third key: %v, want ErrFull matching ErrUnavailable", err)
	}
	// Existing keys still count.
	if st, err := m.Fail(ctx, "a", rule); err != nil || st.Failures != 2 {
		t.Fatalf("existing key: %+v %v", st, err)
	}
	// Once the windows pass, the cap sweeps the expired entries.
	clk.Advance(rule.Window)
	if st, err := m.Fail(ctx, "c", rule); err != nil || st.Failures != 1 {
		t.Fatalf("after expiry: %+v %v", st, err)
	}
}

func TestEventID(t *testing.T) {
	tests := []struct {
		in   string
		want sessions.EventID
		ok   bool
	}{
		{"1740830400000-0", sessions.EventID{Millis: 1740830400000}, true},
		{"5-17", sessions.EventID{Millis: 5, Seq: 17}, true},
		{"", sessions.EventID{}, false},
		{"5", sessions.EventID{}, false},
		{"-5-1", sessions.EventID{}, false},
		{"+5-1", sessions.EventID{}, false},
		{"5-+1", sessions.EventID{}, false},
		{"5-1-2", sessions.EventID{}, false},
		{"a-1", sessions.EventID{}, false},
		{"99999999999999999999-1", sessions.EventID{}, false},
	}
	for _, tt := range tests {
		got, err := sessions.ParseEventID(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseEventID(%q) = %v, %v", tt.in, got, err)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
		if !tt.ok && !errors.Is(err, sessions.ErrBadEventID) {
			t.Errorf("ParseEventID(%q) error %v, want ErrBadEventID", tt.in, err)
		}
	}
	a, b := sessions.EventID{Millis: 1, Seq: 9}, sessions.EventID{Millis: 2}
	if a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 {
		t.Fatal("Compare")
	}
}

func msg(call, typ string) sessions.AgentMessage {
	return sessions.AgentMessage{Type: typ, Call: call}
}

func ids(ms []sessions.AgentMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func TestLogAppendSince(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m := sessions.NewMemory(sessions.WithClock(clk.Now))
	var stored []sessions.AgentMessage
	add := func(call, typ string) sessions.AgentMessage {
		t.Helper()
		s, err := m.Append(ctx, msg(call, typ))
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, s)
		return s
	}
	a1 := add("A", "call")
	b1 := add("B", "call")
	clk.Advance(time.Millisecond)
	a2 := add("A", "step")
	a3 := add("A", "verified")

	wantIDs := []string{"1740830400000-0", "1740830400000-1", "1740830400001-0", "1740830400001-1"}
	if got := ids(stored); fmt.Sprint(got) != fmt.Sprint(wantIDs) {
		t.Fatalf("ids %v, want %v", got, wantIDs)
	}
	if !a1.At.Equal(clk.Now().Add(-time.Millisecond)) {
		t.Fatalf("At not defaulted to now: %v", a1.At)
	}

	tests := []struct {
		name, call, after string
		want              []sessions.AgentMessage
	}{
		{"one call", "A", "", []sessions.AgentMessage{a1, a2, a3}},
		{"one call after", "A", a2.ID, []sessions.AgentMessage{a3}},
		{"after an id of another call", "A", b1.ID, []sessions.AgentMessage{a2, a3}},
		{"after the last", "A", a3.ID, nil},
		{"unknown call", "C", "", nil},
		{"all calls in id order", "", "", []sessions.AgentMessage{a1, b1, a2, a3}},
		{"all calls after", "", a1.ID, []sessions.AgentMessage{b1, a2, a3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Since(ctx, tt.call, tt.after)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ids(got)) != fmt.Sprint(ids(tt.want)) {
				t.Fatalf("got %v, want %v", ids(got), ids(tt.want))
			}
		})
	}
	if _, err := m.Since(ctx, "A", "nonsense"); !errors.Is(err, sessions.ErrBadEventID) {
		t.Fatalf("bad after: %v", err)
	}
	if _, err := m.Append(ctx, sessions.AgentMessage{Type: "step"}); !errors.Is(err, sessions.ErrBadMessage) {
		t.Fatalf("no call: %v", err)
	}
	calls, _ := m.Calls(ctx)
	if fmt.Sprint(calls) != "[A B]" {
		t.Fatalf("Calls = %v", calls)
	}
}

func TestLogIDsMonotonicWhenClockStepsBack(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m := sessions.NewMemory(sessions.WithClock(clk.Now))
	var prev sessions.EventID
	for i, step := range []time.Duration{0, time.Second, -2 * time.Second, 0, 3 * time.Second} {
		clk.Advance(step)
		s, err := m.Append(ctx, msg("A", "step"))
		if err != nil {
			t.Fatal(err)
		}
		id, err := sessions.ParseEventID(s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && id.Compare(prev) <= 0 {
			t.Fatalf("id %v not after %v", id, prev)
		}
		prev = id
	}
}

func TestLogRetention(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m := sessions.NewMemory(sessions.WithClock(clk.Now), sessions.WithIdleExpiry(time.Hour))
	must := func(_ sessions.AgentMessage, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.Append(ctx, sessions.AgentMessage{Type: "call", Call: "ended", State: "started"}))
	must(m.Append(ctx, sessions.AgentMessage{Type: "call", Call: "ended", State: "ended"}))
	must(m.Append(ctx, sessions.AgentMessage{Type: "call", Call: "live", State: "started"}))

	count := func(call string) int {
		got, err := m.Since(ctx, call, "")
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	clk.Advance(sessions.DefaultRetention - time.Second)
	if count("ended") != 2 || count("") != 3 {
		t.Fatal("ended call dropped before its retention")
	}
	clk.Advance(time.Second)
	if count("ended") != 0 || count("live") != 1 {
		t.Fatal("ended call kept past its retention, or live call dropped")
	}
	if calls, _ := m.Calls(ctx); fmt.Sprint(calls) != "[live]" {
		t.Fatalf("Calls = %v", calls)
	}
	clk.Advance(time.Hour)
	if count("") != 0 {
		t.Fatal("idle live call kept past the idle expiry")
	}
}

func TestLogCaps(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m := sessions.NewMemory(sessions.WithClock(clk.Now), sessions.WithLimits(0, 2, 3))
	for _, c := range []string{"A", "A", "A", "B"} {
		if _, err := m.Append(ctx, msg(c, "step")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Append(ctx, msg("A", "step")); !errors.Is(err, sessions.ErrFull) {
		t.Fatalf("per-call cap: %v", err)
	}
	if _, err := m.Append(ctx, msg("C", "step")); !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("call cap: %v", err)
	}
	if _, err := m.Append(ctx, sessions.AgentMessage{Type: "call", Call: "B", State: "ended"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(sessions.DefaultRetention)
	if _, err := m.Append(ctx, msg("C", "step")); err != nil {
		t.Fatalf("after B expired: %v", err)
	}
}

func TestLogReturnsCopies(t *testing.T) {
	ctx := context.Background()
	m := sessions.NewMemory()
	in := sessions.AgentMessage{Type: "verified", Call: "A", AMR: []string{"kba"}}
	out, err := m.Append(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	in.AMR[0], out.AMR[0] = "x", "y"
	got, _ := m.Since(ctx, "A", "")
	got[0].AMR[0] = "z"
	again, _ := m.Since(ctx, "A", "")
	if again[0].AMR[0] != "kba" {
		t.Fatalf("stored AMR aliased: %v", again[0].AMR)
	}
}

func TestAgentMessageStringRedactsToken(t *testing.T) {
	m := sessions.AgentMessage{Type: "verified", Call: "CA1", Level: "reasonable", Token: "eyJsecret.payload.sig"}
	s := fmt.Sprint(m)
	if want := "verified call=CA1 level=reasonable token=[21 bytes redacted]"; s != want {
		t.Fatalf("String() = %q, want %q", s, want)
	}
}
