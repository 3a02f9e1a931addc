package asterisk

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

const wait = 5 * time.Second

// toneClip returns a clip of d of a 440 Hz tone.
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

// server is an httptest server running Handler; each started call's leg goes to legs and the
// serve function returns when the call ends.
type server struct {
	*httptest.Server
	legs     chan media.Leg
	handlers sync.WaitGroup
}

func newServer(t *testing.T, cfg Config) *server {
	t.Helper()
	s := &server{legs: make(chan media.Leg, 8)}
	h := NewHandler(cfg, func(ctx context.Context, leg media.Leg) {
		s.legs <- leg
		<-ctx.Done()
	}, zaptest.NewLogger(t))
	// httptest.Server.Close does not wait for hijacked connections' handlers; the test does.
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handlers.Add(1)
		defer s.handlers.Done()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		s.Close()
		s.handlers.Wait()
	})
	return s
}

func (s *server) wsURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") + Path }

func (s *server) nextLeg(t *testing.T) media.Leg {
	t.Helper()
	select {
	case l := <-s.legs:
		return l
	case <-time.After(wait):
		t.Fatal("no call reached the serve function")
	}
	return nil
}

func dial(t *testing.T, url string, o DialOptions) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := Dial(ctx, url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func nextEvent(t *testing.T, leg media.Leg) media.Event {
	t.Helper()
	select {
	case ev, ok := <-leg.Events():
		if !ok {
			t.Fatal("leg events closed")
		}
		return ev
	case <-time.After(wait):
		t.Fatal("no leg event in time")
	}
	return media.Event{}
}

func nextSim(t *testing.T, c *Client) media.SimEvent {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatal("client events closed")
		}
		return ev
	case <-time.After(wait):
		t.Fatal("no client event in time")
	}
	return media.SimEvent{}
}

// nextSimKind skips audio until an event of another kind.
func nextSimKind(t *testing.T, c *Client) (media.SimEvent, []int16) {
	t.Helper()
	var audio []int16
	for {
		ev := nextSim(t, c)
		if ev.Kind != media.SimAudio {
			return ev, audio
		}
		audio = append(audio, ev.Audio...)
	}
}

func drainLeg(t *testing.T, leg media.Leg) media.Event {
	t.Helper()
	var last media.Event
	deadline := time.After(wait)
	for {
		select {
		case ev, ok := <-leg.Events():
			if !ok {
				return last
			}
			last = ev
		case <-deadline:
			t.Fatal("leg did not end in time")
		}
	}
}
