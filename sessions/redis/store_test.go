package redis_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/redis"
	"github.com/callproof/callproof/sessions/redis/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// open opens a Store on addr under prefix, closed when t ends.
func open(t *testing.T, addr, prefix string, opts ...redis.Option) *redis.Store {
	t.Helper()
	s, err := redis.Open(context.Background(), redis.Config{URL: "redis://" + addr, Prefix: prefix,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second},
		zaptest.NewLogger(t), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// raw is a plain client for inspecting what the store wrote.
func raw(t *testing.T, addr string) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func near(got, want, tolerance time.Duration) bool {
	return got <= want && got >= want-tolerance
}

func TestAttemptsLockout(t *testing.T) {
	addr := redistest.Addr(t)
	s := open(t, addr, redistest.Prefix())
	ctx := context.Background()
	r := sessions.Rule{Max: 3, Window: 500 * time.Millisecond, LockFor: 700 * time.Millisecond}
	const slack = 200 * time.Millisecond
	type step struct {
		sleep time.Duration
		op    string // fail, check, reset
		want  sessions.LockState
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
			{0, "fail", sessions.LockState{Failures: 2}},
			{0, "check", sessions.LockState{Failures: 2}},
		}},
		{"locks at max", []step{
			{0, "fail", sessions.LockState{Failures: 1}},
			{0, "fail", sessions.LockState{Failures: 2}},
			{0, "fail", locked(r.LockFor)},
			{0, "check", locked(r.LockFor)},
		}},
		{"failures while locked neither count nor extend", []step{
			{0, "fail", sessions.LockState{Failures: 1}},
			{0, "fail", sessions.LockState{Failures: 2}},
			{0, "fail", locked(r.LockFor)},
			{300 * time.Millisecond, "fail", locked(r.LockFor - 300*time.Millisecond)},
			{500 * time.Millisecond, "check", sessions.LockState{}},
		}},
		{"lock expires then counting restarts", []step{
			{0, "fail", sessions.LockState{Failures: 1}},
			{0, "fail", sessions.LockState{Failures: 2}},
			{0, "fail", locked(r.LockFor)},
			{r.LockFor + 50*time.Millisecond, "fail", sessions.LockState{Failures: 1}},
		}},
		{"window starts at the first failure", []step{
			{0, "fail", sessions.LockState{Failures: 1}},
			{300 * time.Millisecond, "fail", sessions.LockState{Failures: 2}},
			{250 * time.Millisecond, "check", sessions.LockState{}},
			{0, "fail", sessions.LockState{Failures: 1}},
		}},
		{"reset clears a lock", []step{
			{0, "fail", sessions.LockState{Failures: 1}},
			{0, "fail", sessions.LockState{Failures: 2}},
			{0, "fail", locked(r.LockFor)},
			{0, "reset", sessions.LockState{}},
			{0, "check", sessions.LockState{}},
			{0, "fail", sessions.LockState{Failures: 1}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key := strings.Repeat("ab", 32) + tt.name // a hashed subject key, one per case
			for i, st := range tt.steps {
				time.Sleep(st.sleep)
				var got sessions.LockState
				var err error
				switch st.op {
				case "fail":
					got, err = s.Fail(ctx, key, r)
				case "check":
					got, err = s.Check(ctx, key)
				case "reset":
					err = s.Reset(ctx, key)
				}
				if err != nil {
					t.Fatalf("step %d %s: %v", i, st.op, err)
				}
				if got.Locked != st.want.Locked || got.Failures != st.want.Failures ||
					!near(got.RetryAfter, st.want.RetryAfter, slack) {
					t.Fatalf("step %d %s: got %+v, want %+v", i, st.op, got, st.want)
				}
			}
		})
	}
}

func TestAttemptsErrors(t *testing.T) {
	s := open(t, redistest.Addr(t), redistest.Prefix())
	ctx := context.Background()
	if _, err := s.Fail(ctx, "", sessions.Rule{Max: 1, Window: time.Second, LockFor: time.Second}); !errors.Is(err, sessions.ErrBadKey) {
		t.Fatalf("empty key: %v", err)
	}
	if _, err := s.Check(ctx, strings.Repeat("k", 513)); !errors.Is(err, sessions.ErrBadKey) {
		t.Fatalf("long key: %v", err)
	}
	if _, err := s.Fail(ctx, "k", sessions.Rule{Max: 1}); !errors.Is(err, sessions.ErrBadRule) {
		t.Fatalf("bad rule: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Reset(cancelled, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestAttemptsConcurrentFailTwoClients hammers one key from two nodes: every count from 1 to
// Max-1 is seen exactly once, every later failure finds the key locked, and none is lost.
func TestAttemptsConcurrentFailTwoClients(t *testing.T) {
	addr := redistest.Addr(t)
	prefix := redistest.Prefix()
	nodes := []*redis.Store{open(t, addr, prefix), open(t, addr, prefix)}
	ctx := context.Background()
	const max = 10
	r := sessions.Rule{Max: max, Window: time.Minute, LockFor: time.Minute}
	var mu sync.Mutex
	var results []sessions.LockState
	var wg sync.WaitGroup
	for i := range 40 {
		s := nodes[i%2]
		wg.Go(func() {
			for range 3 {
				st, err := s.Fail(ctx, "hot", r)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				results = append(results, st)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var counts []int
	locked := 0
	for _, st := range results {
		if st.Locked {
			locked++
			if st.Failures != max || st.RetryAfter > r.LockFor || st.RetryAfter < r.LockFor-10*time.Second {
				t.Fatalf("locked state %+v", st)
			}
			continue
		}
		counts = append(counts, st.Failures)
	}
	sort.Ints(counts)
	if fmt.Sprint(counts) != "[1 2 3 4 5 6 7 8 9]" || locked != 120-9 {
		t.Fatalf("unlocked counts %v, %d locked of %d", counts, locked, len(results))
	}

	// Below the limit every failure counts.
	big := sessions.Rule{Max: 1000, Window: time.Minute, LockFor: time.Minute}
	for i := range 50 {
		s := nodes[i%2]
		wg.Go(func() {
			for range 4 {
				if _, err := s.Fail(ctx, "counted", big); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if st, err := nodes[0].Check(ctx, "counted"); err != nil || st.Failures != 200 {
		t.Fatalf("after 200 concurrent failures: %+v %v", st, err)
	}
}

func TestReplay(t *testing.T) {
	addr := redistest.Addr(t)
	prefix := redistest.Prefix()
	a, b := open(t, addr, prefix), open(t, addr, prefix)
	rc := raw(t, addr)
	ctx := context.Background()
	consume := func(s *redis.Store, id string, until time.Time) bool {
		t.Helper()
		first, err := s.Consume(ctx, id, until)
		if err != nil {
			t.Fatal(err)
		}
		return first
	}
	soon := time.Now().Add(sessions.MinReplayTTL + 200*time.Millisecond)
	if !consume(a, "j1", soon) || consume(a, "j1", soon) || consume(b, "j1", soon) {
		t.Fatal("j1: want first once, on either node")
	}
	if !consume(b, "j2", soon) {
		t.Fatal("j2 is a different id")
	}
	time.Sleep(time.Until(soon) + 50*time.Millisecond)
	if !consume(b, "j1", time.Now().Add(time.Minute)) {
		t.Fatal("j1 not forgotten after its deadline")
	}
	// A deadline in the past is still held for MinReplayTTL.
	if !consume(a, "j3", time.Now().Add(-time.Hour)) {
		t.Fatal("j3")
	}
	if ttl := rc.PTTL(ctx, prefix+"replay:j3").Val(); !near(ttl, sessions.MinReplayTTL, 200*time.Millisecond) {
		t.Fatalf("j3 TTL %v, want about %v", ttl, sessions.MinReplayTTL)
	}
	// Exactly once under contention from two nodes.
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := 0
	for i := range 50 {
		s := []*redis.Store{a, b}[i%2]
		wg.Go(func() {
			first, err := s.Consume(ctx, "contended", time.Now().Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if first {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firsts != 1 {
		t.Fatalf("%d firsts", firsts)
	}
	if _, err := a.Consume(ctx, "", soon); !errors.Is(err, sessions.ErrBadKey) {
		t.Fatalf("empty id: %v", err)
	}
}

// TestKeysArePrefixedWithTTLs checks the key layout: everything under the prefix, hash tags
// on the attempt keys, and a TTL on every key.
func TestKeysArePrefixedWithTTLs(t *testing.T) {
	addr := redistest.Addr(t)
	prefix := redistest.Prefix()
	s := open(t, addr, prefix)
	rc := raw(t, addr)
	ctx := context.Background()
	r := sessions.Rule{Max: 2, Window: time.Minute, LockFor: time.Minute}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Fail(ctx, "subj1", r)
	must(err)
	_, err = s.Fail(ctx, "subj2", r)
	must(err)
	_, err = s.Fail(ctx, "subj2", r)
	must(err)
	_, err = s.Consume(ctx, "jti1", time.Now().Add(time.Minute))
	must(err)
	_, err = s.Append(ctx, sessions.AgentMessage{Type: "call", Call: "CA1", State: "started"})
	must(err)
	keys, err := rc.Keys(ctx, prefix+"*").Result()
	must(err)
	sort.Strings(keys)
	want := []string{"attempts:{subj1}:fail", "attempts:{subj2}:lock", "epoch", "replay:jti1", "{agent}:call:CA1", "{agent}:calls", "{agent}:last"}
	for i := range want {
		want[i] = prefix + want[i]
	}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("keys %v\nwant %v", keys, want)
	}
	for _, k := range keys {
		if ttl := rc.PTTL(ctx, k).Val(); ttl <= 0 {
			t.Errorf("%s has no TTL (%v)", k, ttl)
		}
	}
}

func TestOpenUnreachableFailsQuickly(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	began := time.Now()
	_, err := redis.Open(context.Background(), redis.Config{URL: srv.URL(), DialTimeout: 500 * time.Millisecond}, nil)
	if !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("Open: %v, want ErrUnavailable", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("Open took %v", d)
	}
	if _, err := redis.Open(context.Background(), redis.Config{}, nil); !errors.Is(err, redis.ErrBadConfig) {
		t.Fatalf("empty config: %v", err)
	}
}

// TestRedisDownThenBack stops the server under an open Store: every operation fails closed
// with ErrUnavailable within the timeouts; after a restart the Store works again.
func TestRedisDownThenBack(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.Addr, redistest.Prefix(), redis.WithHealthInterval(50*time.Millisecond),
		redis.WithRestoreGrace(300*time.Millisecond))
	ctx := context.Background()
	r := sessions.Rule{Max: 3, Window: time.Minute, LockFor: time.Minute}
	ops := map[string]func() error{
		"check": func() error { _, err := s.Check(ctx, "k"); return err },
		"fail":  func() error { _, err := s.Fail(ctx, "k", r); return err },
		"reset": func() error { return s.Reset(ctx, "k") },
		"consume": func() error {
			_, err := s.Consume(ctx, fmt.Sprint(time.Now().UnixNano()), time.Now().Add(time.Minute))
			return err
		},
		"append": func() error { _, err := s.Append(ctx, sessions.AgentMessage{Type: "step", Call: "A"}); return err },
		"since":  func() error { _, err := s.Since(ctx, "A", ""); return err },
		"all":    func() error { _, err := s.Since(ctx, "", ""); return err },
		"ping":   func() error { return s.Ping(ctx) },
	}
	for name, op := range ops {
		if err := op(); err != nil {
			t.Fatalf("%s with the server up: %v", name, err)
		}
	}
	srv.Stop()
	for name, op := range ops {
		began := time.Now()
		err := op()
		if !errors.Is(err, sessions.ErrUnavailable) {
			t.Fatalf("%s with the server down: %v, want ErrUnavailable", name, err)
		}
		if d := time.Since(began); d > 3*time.Second {
			t.Fatalf("%s took %v to fail", name, d)
		}
	}
	srv.Restart()
	for name, op := range ops {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := op()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after the restart: %v", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	s.Close()
	if _, err := s.Check(ctx, "k"); !errors.Is(err, sessions.ErrUnavailable) || !errors.Is(err, sessions.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if _, err := s.Watch(ctx); !errors.Is(err, sessions.ErrClosed) {
		t.Fatalf("Watch after Close: %v", err)
	}
}
