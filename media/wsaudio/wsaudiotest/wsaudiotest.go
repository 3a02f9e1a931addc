// Package wsaudiotest is the test kit of the WebSocket L16 adapters (media/vonage,
// media/jambonz, media/freeswitch): a loopback server that waits for its handlers, raw
// WebSocket calls for bad-input tables, tone clips, and helpers that read a leg's or a
// simulated client's events with deadlines.
package wsaudiotest

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
)

// Wait is how long the helpers' callers should wait for an event before failing: generous,
// because a loaded CI machine can stall a process for seconds; it only matters on failure.
const Wait = 15 * time.Second

// Long is a prompt length that a test can rely on not having finished playing before its
// next step, even on a loaded machine.
const Long = 30 * time.Second

// Server is an httptest server whose Close waits for every handler, hijacked ones included,
// so a stream's goroutines and log lines end inside the test.
type Server struct {
	*httptest.Server
	handlers sync.WaitGroup
}

// NewServer serves h on a loopback port until the test ends.
func NewServer(t testing.TB, h http.Handler) *Server {
	t.Helper()
	s := &Server{}
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

// WS returns the ws:// URL of path on s.
func (s *Server) WS(path string) string { return "ws" + strings.TrimPrefix(s.URL, "http") + path }

// Legs returns a serve function that hands each leg to the returned channel and keeps the
// call up until the leg ends, so the test drives it.
func Legs() (func(ctx context.Context, leg media.Leg), <-chan media.Leg) {
	ch := make(chan media.Leg, 16)
	return func(ctx context.Context, leg media.Leg) {
		ch <- leg
		<-ctx.Done()
	}, ch
}

// Leg waits for the next leg.
func Leg(t testing.TB, legs <-chan media.Leg) media.Leg {
	t.Helper()
	select {
	case l := <-legs:
		return l
	case <-time.After(Wait):
		t.Fatalf("no leg within %s", Wait)
		return nil
	}
}

// Next returns the leg's next event, failing the test after timeout.
func Next(t testing.TB, leg media.Leg, timeout time.Duration) media.Event {
	t.Helper()
	select {
	case ev, ok := <-leg.Events():
		if !ok {
			t.Fatal("leg events closed")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no leg event within %s", timeout)
		return media.Event{}
	}
}

// Drain reads the leg's events until the channel closes.
func Drain(leg media.Leg) []media.Event {
	var evs []media.Event
	for ev := range leg.Events() {
		evs = append(evs, ev)
	}
	return evs
}

// NextSim returns the next event from a simulated client, skipping SimAudio when skipAudio
// is set, failing the test after timeout.
func NextSim(t testing.TB, events <-chan media.SimEvent, skipAudio bool, timeout time.Duration) media.SimEvent {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("client events closed")
			}
			if skipAudio && ev.Kind == media.SimAudio {
				continue
			}
			return ev
		case <-deadline:
			t.Fatalf("no client event within %s", timeout)
			return media.SimEvent{}
		}
	}
}

// Audio reads SimAudio events until it has n samples, failing on any other event.
func Audio(t testing.TB, events <-chan media.SimEvent, n int, timeout time.Duration) []int16 {
	t.Helper()
	var pcm []int16
	deadline := time.After(timeout)
	for len(pcm) < n {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("client events closed after %d of %d samples", len(pcm), n)
			}
			if ev.Kind != media.SimAudio {
				t.Fatalf("got %v after %d of %d samples, want audio", ev.Kind, len(pcm), n)
			}
			pcm = append(pcm, ev.Audio...)
		case <-deadline:
			t.Fatalf("only %d of %d samples within %s", len(pcm), n, timeout)
		}
	}
	return pcm
}

// Tone returns a clip of d of a hz tone (so its samples are not all one value).
func Tone(t testing.TB, id string, hz float64, d time.Duration) *media.Clip {
	t.Helper()
	n := int(d / (time.Second / media.SampleRate))
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*hz*float64(i)/media.SampleRate))
	}
	c, err := media.NewClip(id, pcm)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Frame is one message a raw call sends.
type Frame struct {
	Type int
	Data []byte
}

// Text is a text frame.
func Text(s string) Frame { return Frame{websocket.TextMessage, []byte(s)} }

// Binary is a binary frame.
func Binary(b []byte) Frame { return Frame{websocket.BinaryMessage, b} }

// RawCall dials url with a bare WebSocket (offering subprotocol when not ""), writes frames
// and returns the close code and reason the server answered with; when the server refuses the
// upgrade the code is minus the HTTP status. Audio the server sends is ignored; any other
// message fails the test.
func RawCall(t testing.TB, url, subprotocol string, hdr http.Header, frames []Frame) (int, string) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: Wait}
	if subprotocol != "" {
		d.Subprotocols = []string{subprotocol}
	}
	conn, resp, err := d.Dial(url, hdr)
	if err != nil {
		if resp != nil {
			return -resp.StatusCode, ""
		}
		t.Fatal(err)
	}
	defer conn.Close()
	for _, f := range frames {
		if err := conn.WriteMessage(f.Type, f.Data); err != nil {
			break // the server may already have closed
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(Wait))
	for {
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Text
			}
			t.Fatalf("read: %v (want a close frame)", err)
		}
		if typ == websocket.TextMessage {
			t.Fatalf("server sent %q to a stream that only misbehaved", msg)
		}
	}
}
