package telnyx

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tone returns n samples of a 440 Hz tone.
func tone(n int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/media.SampleRate))
	}
	return pcm
}

// clipOf returns a clip of d of tone.
func clipOf(t testing.TB, id string, d time.Duration) *media.Clip {
	t.Helper()
	c, err := media.NewClip(id, tone(int(d/(time.Second/media.SampleRate))))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testServer runs Handler on a loopback httptest server. httptest.Server.Close does not wait
// for handlers of hijacked connections, so it counts them and the cleanup waits, keeping every
// stream's goroutines and log lines inside the test.
type testServer struct {
	*httptest.Server
	running sync.WaitGroup
	mu      sync.Mutex
	served  int
}

func newTestServer(t *testing.T, cfg Config, serve func(ctx context.Context, leg media.Leg)) *testServer {
	t.Helper()
	ts := &testServer{}
	h := NewHandler(cfg, func(ctx context.Context, leg media.Leg) {
		ts.mu.Lock()
		ts.served++
		ts.mu.Unlock()
		serve(ctx, leg)
	}, zaptest.NewLogger(t))
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.running.Add(1)
		defer ts.running.Done()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ts.Close()
		ts.running.Wait()
		h.Wait()
	})
	return ts
}

func (ts *testServer) url() string { return "ws" + strings.TrimPrefix(ts.URL, "http") + StreamPath }

func (ts *testServer) calls() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.served
}

// events drains a client's events until the channel closes.
func events(t *testing.T, cl *Client) []media.SimEvent {
	t.Helper()
	var evs []media.SimEvent
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-cl.Events():
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		case <-timeout:
			t.Fatalf("client events did not end; %d so far", len(evs))
		}
	}
}

// legEvents drains a leg's events until the channel closes.
func legEvents(leg media.Leg) []media.Event {
	var evs []media.Event
	for ev := range leg.Events() {
		evs = append(evs, ev)
	}
	return evs
}

// await returns the leg's next event, failing the test after a while.
func await(t *testing.T, leg media.Leg) media.Event {
	t.Helper()
	select {
	case ev := <-leg.Events():
		return ev
	case <-time.After(5 * time.Second):
		t.Error("no leg event within 5s")
		return media.Event{}
	}
}

// tap is a ToneDetector that keeps every sample it is given, finding no digits.
type tap struct {
	mu  sync.Mutex
	pcm []int16
}

func (d *tap) Process(dst []byte, pcm []int16) []byte {
	d.mu.Lock()
	d.pcm = append(d.pcm, pcm...)
	d.mu.Unlock()
	return dst
}

func (d *tap) samples() []int16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.pcm)
}

// quiet is a ToneDetector that reads every sample and allocates nothing.
type quiet struct{ sum int }

func (d *quiet) Process(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		d.sum += int(s)
	}
	return dst
}

// atomicCounter wraps the counter type jitter reports gaps in.
type atomicCounter struct{ atomic.Uint64 }
