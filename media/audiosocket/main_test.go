package audiosocket

import (
	"context"
	"errors"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// toneClip returns a clip of d of a 440 Hz tone, so every frame differs from silence.
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

// testServer is a Server listening on loopback; serve runs for every call.
type testServer struct {
	*Server
	addr string
	mu   sync.Mutex
	legs []*Leg
}

func startServer(t *testing.T, cfg Config, serve func(ctx context.Context, leg media.Leg)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String()}
	ts.Server = NewServer(cfg, func(ctx context.Context, leg media.Leg) {
		ts.mu.Lock()
		ts.legs = append(ts.legs, leg.(*Leg))
		ts.mu.Unlock()
		serve(ctx, leg)
	}, zaptest.NewLogger(t))
	errc := make(chan error, 1)
	go func() { errc <- ts.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		_ = ts.Close()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

func (ts *testServer) calls() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.legs)
}

// dial connects a client, failing the test on error.
func dial(t *testing.T, addr string, uuid [16]byte, opts ...ClientOption) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, uuid, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// nextEvent waits for the leg's next event.
func nextEvent(t *testing.T, leg media.Leg, timeout time.Duration) media.Event {
	t.Helper()
	select {
	case ev, ok := <-leg.Events():
		if !ok {
			t.Fatalf("leg events closed")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no leg event within %s", timeout)
	}
	return media.Event{}
}

// nextSim waits for the client's next event.
func nextSim(t *testing.T, c *Client, timeout time.Duration) media.SimEvent {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatalf("client events closed")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no client event within %s", timeout)
	}
	return media.SimEvent{}
}

// waitClosed drains the client's events until SimClosed and returns it with the audio frames
// seen on the way.
func waitClosed(t *testing.T, c *Client, timeout time.Duration) (media.SimEvent, int) {
	t.Helper()
	deadline := time.After(timeout)
	frames := 0
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("client events closed without SimClosed")
			}
			if ev.Kind == media.SimClosed {
				return ev, frames
			}
			frames++
		case <-deadline:
			t.Fatalf("client not closed within %s", timeout)
		}
	}
}

// drainLeg reads a leg's events to the end and returns the last one.
func drainLeg(t *testing.T, leg media.Leg, timeout time.Duration) media.Event {
	t.Helper()
	var last media.Event
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-leg.Events():
			if !ok {
				return last
			}
			last = ev
		case <-deadline:
			t.Fatalf("leg did not end within %s", timeout)
		}
	}
}

func isProtocol(err error) bool { return errors.Is(err, media.ErrProtocol) }
