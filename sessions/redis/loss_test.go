package redis_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/audit"
	"github.com/callproof/callproof/sessions/redis"
	"github.com/callproof/callproof/sessions/redis/redistest"
)

// fast makes a Store notice and restore quickly, for tests.
var fast = []redis.Option{redis.WithHealthInterval(50 * time.Millisecond), redis.WithRestoreGrace(500 * time.Millisecond)}

// until polls op until it succeeds or the deadline passes. Every failure must wrap
// sessions.ErrUnavailable; it returns how many failed with ErrStateLost and how long it took.
func until(t *testing.T, what string, d time.Duration, op func() error) (lost int, took time.Duration) {
	t.Helper()
	began := time.Now()
	for {
		err := op()
		if err == nil {
			return lost, time.Since(began)
		}
		if !errors.Is(err, sessions.ErrUnavailable) {
			t.Fatalf("%s: %v, want an error wrapping ErrUnavailable", what, err)
		}
		if errors.Is(err, redis.ErrStateLost) {
			lost++
		}
		if time.Since(began) > d {
			t.Fatalf("%s: still failing after %v: %v", what, d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Redis is killed and comes back empty: until the nodes wrote back what they hold, lockout
// and single-use operations fail closed (never an answer read from the empty Redis); then a
// lock set on one node holds on the other, failure counts and used token ids are back, a
// reset stays reset, and the audit records no writer had taken are in the stream again.
func TestStateLostIsRestoredFromNodes(t *testing.T) {
	srv := redistest.Start(t)
	prefix := redistest.Prefix()
	a, b := open(t, srv.Addr, prefix, fast...), open(t, srv.Addr, prefix, fast...)
	ctx := context.Background()
	r := sessions.Rule{Max: 3, Window: time.Minute, LockFor: time.Minute}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		_, err := a.Fail(ctx, "locked", r)
		must(err)
	}
	for range 2 {
		_, err := b.Fail(ctx, "counted", r)
		must(err)
	}
	_, err := a.Fail(ctx, "cleared", r)
	must(err)
	must(a.Reset(ctx, "cleared"))
	for _, c := range []struct {
		s  *redis.Store
		id string
	}{{a, "jti-a"}, {b, "jti-b"}} {
		first, err := c.s.Consume(ctx, c.id, time.Now().Add(time.Minute))
		if err != nil || !first {
			t.Fatalf("consume %s: %v %v", c.id, first, err)
		}
	}
	must(a.AuditStream("node-a").Append(ctx, record(1)))

	srv.Kill()
	srv.Restart()
	// B never saw "locked": only A's copy can bring the lock back. Until then B answers
	// nothing, and never "not locked".
	lost, took := until(t, "check after the restart", 5*time.Second, func() error {
		st, err := b.Check(ctx, "locked")
		if err == nil && !st.Locked {
			t.Fatalf("the lock vanished with Redis's data: %+v", st)
		}
		return err
	})
	if lost == 0 {
		t.Fatal("no operation reported the loss of state")
	}
	t.Logf("lockout checks answered again %v after Redis came back", took.Round(10*time.Millisecond))
	if st, err := a.Check(ctx, "counted"); err != nil || st.Failures != 2 || st.Locked {
		t.Fatalf("B's failures after the restore: %+v %v", st, err)
	}
	if st, err := b.Check(ctx, "cleared"); err != nil || st.Failures != 0 {
		t.Fatalf("a reset subject after the restore: %+v %v", st, err)
	}
	for _, c := range []struct {
		s  *redis.Store
		id string
	}{{b, "jti-a"}, {a, "jti-b"}} {
		if first, err := c.s.Consume(ctx, c.id, time.Now().Add(time.Minute)); err != nil || first {
			t.Fatalf("token id %s used before the loss accepted again: first=%v %v", c.id, first, err)
		}
	}
	if first, err := a.Consume(ctx, "jti-new", time.Now().Add(time.Minute)); err != nil || !first {
		t.Fatalf("a new id: %v %v", first, err)
	}
	// The record is in the stream again, and a writer reads it (the group is created anew).
	src := b.AuditStream("writer")
	var got []audit.Entry
	until(t, "audit receive", 5*time.Second, func() error {
		var err error
		got, err = src.Receive(ctx)
		return err
	})
	if len(got) != 1 || got[0].Record.ID != record(1).ID {
		t.Fatalf("audit stream after the restore: %+v", got)
	}
	waitState(t, a, redis.StateUp)
}

func waitState(t *testing.T, s *redis.Store, want redis.State) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for s.Status().State != want {
		if time.Now().After(deadline) {
			st := s.Status()
			t.Fatalf("status %v (%v), want %v", st.State, st.Err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The operation that meets the empty Redis first, before any monitor noticed, must not take
// its answer: with monitors that look only once an hour, operations alone notice the loss.
func TestStateLostNoticedByOperations(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.Addr, redistest.Prefix(), redis.WithHealthInterval(time.Hour), redis.WithRestoreGrace(300*time.Millisecond))
	ctx := context.Background()
	r := sessions.Rule{Max: 2, Window: time.Minute, LockFor: time.Minute}
	for range 2 {
		if _, err := s.Fail(ctx, "k", r); err != nil {
			t.Fatal(err)
		}
	}
	srv.Kill()
	srv.Restart()
	var st sessions.LockState
	var err error
	for range 20 { // the first tries may still meet the broken pooled connection
		if st, err = s.Check(ctx, "k"); !errors.Is(err, sessions.ErrUnavailable) || errors.Is(err, redis.ErrStateLost) {
			break
		}
	}
	if !errors.Is(err, redis.ErrStateLost) {
		t.Fatalf("first check on the empty Redis: %+v %v, want ErrStateLost", st, err)
	}
	// A failure taken meanwhile still counts: Fail on the empty Redis fails closed, and the
	// node writes back the lock its count reached.
	until(t, "check after the restore", 5*time.Second, func() error {
		st, err := s.Check(ctx, "k")
		if err == nil && !st.Locked {
			t.Fatalf("unlocked after the restore: %+v", st)
		}
		return err
	})
}

// A Store whose Redis is down at start (New, Connect failing) works once Redis starts,
// reports each state through OnStatus and Ready, and, holding nothing itself, still gives the
// other nodes the grace to restore theirs.
func TestStoreStartsWithRedisDown(t *testing.T) {
	srv := redistest.Reserve(t)
	// A grace long against any scheduling delay of this test, so that its checks certainly
	// meet it.
	const grace = 2 * time.Second
	s, err := redis.New(redis.Config{URL: srv.URL(), DialTimeout: 300 * time.Millisecond}, nil,
		redis.WithHealthInterval(50*time.Millisecond), redis.WithRestoreGrace(grace))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var states []redis.State
	var restoring time.Time // when the store found Redis back (and empty)
	s.OnStatus(func(st redis.Status) {
		mu.Lock()
		states = append(states, st.State)
		if st.State == redis.StateRestoring {
			restoring = st.Since
		}
		mu.Unlock()
	})
	defer s.Close()
	ctx := context.Background()
	if err := s.Connect(ctx); !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("Connect with Redis down: %v", err)
	}
	if err := s.Ready(ctx); !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("Ready with Redis down: %v", err)
	}
	if _, err := s.Check(ctx, "k"); !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("Check with Redis down: %v", err)
	}
	srv.Restart()
	var served time.Time // no later than this, the first check was answered
	lost, _ := until(t, "check once Redis started", 10*time.Second, func() error {
		_, err := s.Check(ctx, "k")
		served = time.Now()
		return err
	})
	mu.Lock()
	since := restoring
	mu.Unlock()
	// Checks were refused while the grace ran, and the first one answered came about a grace
	// after the store found Redis back (the grace starts with the restoring flag, a round trip
	// before the status changes: hence the slack).
	if lost == 0 {
		t.Error("no check was refused with ErrStateLost while the restore grace ran")
	}
	if since.IsZero() || served.Sub(since) < grace-500*time.Millisecond {
		t.Errorf("first check answered %v after the store found Redis back, before the restore grace (%v) passed",
			served.Sub(since), grace)
	}
	until(t, "ready", 2*time.Second, func() error { return s.Ready(ctx) })
	waitState(t, s, redis.StateUp)
	mu.Lock()
	got := slices.Clone(states)
	mu.Unlock()
	if len(got) < 3 || got[0] != redis.StateDown || got[len(got)-1] != redis.StateUp || !slices.Contains(got, redis.StateRestoring) {
		t.Fatalf("status changes %v, want down ... restoring ... up", got)
	}
}
