package twilio

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// toneClip returns a clip of d of a 440 Hz tone, so its μ-law is not all one byte.
func toneClip(t testing.TB, id string, d time.Duration) *media.Clip {
	t.Helper()
	n := int(d / (time.Second / media.SampleRate))
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/media.SampleRate))
	}
	c, err := media.NewClip(id, pcm)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// server is an httptest server running Handler with a serve function per test.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	calls    int
	handlers sync.WaitGroup
}

// newServer starts a stream server; serve runs for each started stream.
func newServer(t *testing.T, cfg Config, serve func(ctx context.Context, leg media.Leg)) *server {
	t.Helper()
	s := &server{}
	h := NewHandler(cfg, func(ctx context.Context, leg media.Leg) {
		s.mu.Lock()
		s.calls++
		s.mu.Unlock()
		serve(ctx, leg)
	}, zaptest.NewLogger(t))
	// httptest.Server.Close does not wait for handlers of hijacked connections, nor the
	// handler for its streams; the test does, so that every stream's goroutines and log lines
	// end inside the test.
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handlers.Add(1)
		defer s.handlers.Done()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		s.Close()
		s.handlers.Wait()
		h.Wait()
	})
	return s
}

func (s *server) wsURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") + StreamPath }

func (s *server) served() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// collect drains a client's events until "closed".
func collect(t *testing.T, cl *Client, timeout time.Duration) []ClientEvent {
	t.Helper()
	var evs []ClientEvent
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-cl.Events():
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		case <-deadline:
			t.Fatalf("client events did not end within %s; got %d events", timeout, len(evs))
		}
	}
}

// next waits for the leg's next event of type want, failing on anything the test did not
// expect to skip.
func nextEvent(t *testing.T, ctx context.Context, leg media.Leg, timeout time.Duration) media.Event {
	t.Helper()
	select {
	case ev, ok := <-leg.Events():
		if !ok {
			t.Errorf("leg events closed")
			return media.Event{}
		}
		return ev
	case <-time.After(timeout):
		t.Errorf("no leg event within %s", timeout)
		return media.Event{}
	case <-ctx.Done():
		t.Errorf("leg context ended while waiting for an event")
		return media.Event{}
	}
}

// drain reads leg events until the channel closes and returns them.
func drain(leg media.Leg) []media.Event {
	var evs []media.Event
	for ev := range leg.Events() {
		evs = append(evs, ev)
	}
	return evs
}
