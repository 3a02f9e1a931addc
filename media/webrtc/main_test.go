package webrtc

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// toneClip returns a clip of d of a tone at hz, so its G.711 is not all one byte.
func toneClip(t testing.TB, id string, hz float64, d time.Duration) *media.Clip {
	t.Helper()
	c, err := media.NewClip(id, tone(hz, d))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tone(hz float64, d time.Duration) []int16 {
	n := int(d / (time.Second / media.SampleRate))
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*hz*float64(i)/media.SampleRate))
	}
	return pcm
}

// ulawRoundTrip is what PCM looks like after a μ-law encode and decode.
func ulawRoundTrip(pcm []int16) []int16 {
	out := make([]int16, len(pcm))
	for i, s := range pcm {
		out[i] = media.UlawToPCM(media.PCMToUlaw(s))
	}
	return out
}

func alawRoundTrip(pcm []int16) []int16 {
	out := make([]int16, len(pcm))
	for i, s := range pcm {
		out[i] = media.AlawToPCM(media.PCMToAlaw(s))
	}
	return out
}

// testServer is an httptest server mounting the handler as the binary does.
type testServer struct {
	*httptest.Server
	h    *Handler
	mux  *http.ServeMux // tests may add routes
	legs chan media.Leg
}

// newTestServer starts a server whose serve function hands each leg to the test (legs) and
// then runs flow, or, with flow nil, waits for the call to end.
func newTestServer(t *testing.T, cfg Config, flow func(ctx context.Context, leg media.Leg)) *testServer {
	t.Helper()
	if !cfg.AllowLoopback {
		cfg.AllowLoopback = true
	}
	ts := &testServer{legs: make(chan media.Leg, 16)}
	h, err := NewHandler(cfg, func(ctx context.Context, leg media.Leg) {
		ts.legs <- leg
		if flow != nil {
			flow(ctx, leg)
			return
		}
		<-ctx.Done()
	}, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	if err != nil {
		t.Fatal(err)
	}
	ts.h = h
	mux := http.NewServeMux()
	ts.mux = mux
	mux.Handle("POST "+OfferPath, h)
	mux.Handle("DELETE "+OfferPath+"/{id}", h)
	page := PageHandler()
	mux.Handle("GET "+PagePath, page)
	mux.Handle("GET "+ScriptPath, page)
	mux.Handle("GET "+StylePath, page)
	ts.Server = httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.Server.Close()
		_ = h.Close()
	})
	return ts
}

func (ts *testServer) leg(t *testing.T) media.Leg {
	t.Helper()
	select {
	case l := <-ts.legs:
		return l
	case <-time.After(5 * time.Second):
		t.Fatal("no call reached the serve function within 5s")
		return nil
	}
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

// expectEvent skips nothing: the next event must have type want.
func expectEvent(t *testing.T, leg media.Leg, want media.EventType, timeout time.Duration) media.Event {
	t.Helper()
	ev := nextEvent(t, leg, timeout)
	if ev.Type != want {
		t.Fatalf("leg event %s (%+v), want %s", ev.Type, ev, want)
	}
	return ev
}

// clientLog drains a client's events in the background.
type clientLog struct {
	mu     sync.Mutex
	audio  [][]int16
	closed *media.SimEvent
	done   chan struct{}
}

func watchClient(c *Client) *clientLog {
	cl := &clientLog{done: make(chan struct{})}
	go func() {
		defer close(cl.done)
		for ev := range c.Events() {
			cl.mu.Lock()
			switch ev.Kind {
			case media.SimAudio:
				cl.audio = append(cl.audio, ev.Audio)
			case media.SimClosed:
				e := ev
				cl.closed = &e
			}
			cl.mu.Unlock()
		}
	}()
	return cl
}

func (cl *clientLog) frames() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return len(cl.audio)
}

func (cl *clientLog) samples() []int16 {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var out []int16
	for _, f := range cl.audio {
		out = append(out, f...)
	}
	return out
}

// waitClosed waits for the client's SimClosed and the end of its events.
func (cl *clientLog) waitClosed(t *testing.T, timeout time.Duration) media.SimEvent {
	t.Helper()
	select {
	case <-cl.done:
	case <-time.After(timeout):
		t.Fatalf("client events did not end within %s", timeout)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed == nil {
		t.Fatal("client events ended without SimClosed")
	}
	return *cl.closed
}

// recorder is a media.ToneDetector that keeps the PCM the leg hands its receiver.
type recorder struct {
	mu  sync.Mutex
	pcm []int16
}

func (r *recorder) Process(dst []byte, pcm []int16) []byte {
	r.mu.Lock()
	r.pcm = append(r.pcm, pcm...)
	r.mu.Unlock()
	return dst
}

func (r *recorder) samples() []int16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int16(nil), r.pcm...)
}

// eventually polls cond every 10 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sameAfterSilence reports whether got, from its first sound on, starts with want from its
// first sound on (audio that arrives after some silence).
func sameAfterSilence(got, want []int16) bool {
	i, j := firstNonZero(got), firstNonZero(want)
	if i < 0 || j < 0 || len(got)-i < len(want)-j {
		return false
	}
	return slices.Equal(got[i:i+len(want)-j], want[j:])
}

// firstNonZero returns the index of the first sample louder than G.711 silence (A-law
// silence decodes to ±8), or -1.
func firstNonZero(pcm []int16) int {
	for i, s := range pcm {
		if s > 16 || s < -16 {
			return i
		}
	}
	return -1
}
