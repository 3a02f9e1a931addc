package audit

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeSource hands out scripted batches, then blocks; it records acknowledgements.
type fakeSource struct {
	mu      sync.Mutex
	batches [][]Entry
	failing int // Receive errors before the batches
	acked   []string
	drained chan struct{}
}

var _ Source = (*fakeSource)(nil)

func (s *fakeSource) Receive(ctx context.Context) ([]Entry, error) {
	s.mu.Lock()
	if s.failing > 0 {
		s.failing--
		s.mu.Unlock()
		return nil, errors.New("connection reset")
	}
	if len(s.batches) > 0 {
		b := s.batches[0]
		s.batches = s.batches[1:]
		s.mu.Unlock()
		return b, nil
	}
	s.mu.Unlock()
	select {
	case s.drained <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *fakeSource) Ack(_ context.Context, ids ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acked = append(s.acked, ids...)
	return nil
}

// flakySink fails its first append, then passes to next.
type flakySink struct {
	next  Sink
	fails int
}

func (s *flakySink) Append(ctx context.Context, r Record) error {
	if s.fails > 0 {
		s.fails--
		return ErrUnavailable
	}
	return s.next.Append(ctx, r)
}

func TestForward(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		l, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		bad := good("req_bad")
		bad.Call = "+14155550100"
		batch := []Entry{{"1-0", good("req_f1")}, {"1-1", good("req_f2")}, {"1-2", bad}}
		src := &fakeSource{failing: 1, drained: make(chan struct{}, 1),
			batches: [][]Entry{batch, batch, {{"2-0", good("req_f3")}}}}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		start := time.Now()
		go func() { done <- Forward(ctx, src, l, nil) }()
		<-src.drained
		if waited := time.Since(start); waited != ForwardRetry {
			t.Errorf("waited %v after a failed receive, want %v", waited, ForwardRetry)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Forward = %v", err)
		}
		// The redelivered batch was acknowledged again and written once.
		want := []string{"1-0", "1-1", "1-2", "1-0", "1-1", "1-2", "2-0"}
		if !slices.Equal(src.acked, want) {
			t.Errorf("acked %v, want %v", src.acked, want)
		}
		if st := l.Stats(); st.Appended != 3 || st.Duplicates != 2 || st.Commits != 2 {
			t.Errorf("stats %+v: want 3 records in 2 commits, 2 duplicates", st)
		}
		_ = l.Close()
		if s, err := verifyFile(t, filepath.Join(dir, FileName)); err != nil || s.Records != 3 {
			t.Fatalf("verify: %+v, %v", s, err)
		}
	})
}

func TestForwardDoesNotAckAFailedAppend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		batch := []Entry{{"1-0", good("req_g1")}}
		src := &fakeSource{drained: make(chan struct{}, 1), batches: [][]Entry{batch, batch}}
		sink := &flakySink{next: l, fails: 1}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- Forward(ctx, src, sink, nil) }()
		<-src.drained
		cancel()
		<-done
		if !slices.Equal(src.acked, []string{"1-0"}) {
			t.Errorf("acked %v: want the batch acknowledged once, after the append that worked", src.acked)
		}
		if st := l.Stats(); st.Appended != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}
