package sip

import (
	"context"
	"math"
	"net/netip"
	"os/exec"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// toneClip returns a clip of d of a 440 Hz tone.
func toneClip(t testing.TB, id string, d time.Duration, freq float64) *media.Clip {
	t.Helper()
	n := int(d / (time.Second / media.SampleRate))
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*freq*float64(i)/media.SampleRate))
	}
	c, err := media.NewClip(id, pcm)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// loopback is the allow-from list of the tests.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// flowRecord is what a scripted flow saw.
type flowRecord struct {
	mu     sync.Mutex
	start  *media.Start
	digits []byte
	srcs   []media.DigitSource
	marks  []string
	err    error // the hangup event's
	done   chan struct{}
}

func newRecord() *flowRecord { return &flowRecord{done: make(chan struct{})} }

func (r *flowRecord) Digits() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.digits)
}

func (r *flowRecord) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(d):
		t.Fatalf("flow did not finish within %s (digits %q)", d, r.Digits())
	}
}

// recordFlow records every event; onEvent may act on the leg (return true to stop reading
// and return from serve).
func recordFlow(r *flowRecord, onEvent func(leg media.Leg, ev media.Event) bool) func(ctx context.Context, leg media.Leg) {
	return func(ctx context.Context, leg media.Leg) {
		defer close(r.done)
		for ev := range leg.Events() {
			r.mu.Lock()
			switch ev.Type {
			case media.EventStart:
				r.start = ev.Start
			case media.EventDTMF:
				r.digits = append(r.digits, ev.Digit)
				r.srcs = append(r.srcs, ev.Source)
			case media.EventMark:
				r.marks = append(r.marks, ev.Mark)
			case media.EventHangup:
				r.err = ev.Err
			}
			r.mu.Unlock()
			if onEvent != nil && onEvent(leg, ev) {
				return
			}
		}
	}
}

// startServer runs a server on free loopback ports until the test ends.
func startServer(t *testing.T, cfg Config, serve func(ctx context.Context, leg media.Leg)) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	s, err := NewServer(cfg, serve, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.ListenAndServe(ctx) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		cancel()
		t.Fatalf("server: %v", err)
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("server not ready")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("server did not stop")
		}
	})
	return s
}

func haveSIPp() bool { _, err := exec.LookPath("sipp"); return err == nil }
