package audiosocket

import (
	"bufio"
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
)

// pipeCall runs one call over net.Pipe inside a synctest bubble: the server side is the
// Server's connection handler, the Asterisk side is read frame by frame with the bubble's
// clock. It returns the leg and a channel of (arrival time, kind) for every frame the server
// sends; the channel closes when the server closes.
type arrival struct {
	at   time.Time
	kind byte
	pcm0 int16 // first sample, to tell clips apart
}

func pipeCall(t *testing.T, cfg Config, sendUUID bool) (media.Leg, net.Conn, <-chan arrival) {
	t.Helper()
	srv, ast := net.Pipe()
	legs := make(chan media.Leg, 1)
	s := NewServer(cfg, func(ctx context.Context, leg media.Leg) {
		legs <- leg
		<-ctx.Done()
	}, zap.NewNop())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.handle(context.Background(), srv)
	}()
	t.Cleanup(func() { _ = ast.Close(); <-done })
	arrivals := make(chan arrival, 1024)
	go func() {
		defer close(arrivals)
		fr := frameReader{r: bufio.NewReader(ast)}
		for {
			kind, p, err := fr.next()
			if err != nil {
				return
			}
			a := arrival{at: time.Now(), kind: kind}
			if len(p) >= 2 {
				a.pcm0 = int16(uint16(p[0]) | uint16(p[1])<<8)
			}
			arrivals <- a
			if kind == kindHangup {
				_ = ast.Close()
				return
			}
		}
	}()
	if !sendUUID {
		return nil, ast, arrivals
	}
	u := NewUUID()
	if _, err := ast.Write(frame(kindUUID, u[:])); err != nil {
		t.Fatal(err)
	}
	leg := <-legs
	if ev := <-leg.Events(); ev.Type != media.EventStart {
		t.Fatalf("first event %v", ev.Type)
	}
	return leg, ast, arrivals
}

func constClip(t *testing.T, id string, frames int, v int16) *media.Clip {
	t.Helper()
	pcm := make([]int16, frames*media.FrameSamples)
	for i := range pcm {
		pcm[i] = v
	}
	c, err := media.NewClip(id, pcm)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPacing checks the playout clock on the bubble's fake time: one frame every 20 ms
// exactly, back-to-back prompts on one schedule, the mark right after a prompt's last frame, a
// fresh schedule after an idle gap, and Clear stopping playback at the next frame.
func TestPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leg, _, arrivals := pipeCall(t, Config{IdleTimeout: time.Hour}, true)
		a, b := constClip(t, "a", 10, 100), constClip(t, "b", 5, 200)
		t0 := time.Now()
		if err := leg.Play(a, "a"); err != nil {
			t.Fatal(err)
		}
		if err := leg.Play(b, "b"); err != nil {
			t.Fatal(err)
		}
		for i := range 15 {
			f := <-arrivals
			if want := t0.Add(time.Duration(i) * media.FrameDuration); !f.at.Equal(want) {
				t.Fatalf("frame %d at +%s, want +%s", i, f.at.Sub(t0), want.Sub(t0))
			}
			if want := map[bool]int16{true: 100, false: 200}[i < 10]; f.kind != kindSlin || f.pcm0 != want {
				t.Fatalf("frame %d: kind 0x%02x sample %d, want audio of clip %d", i, f.kind, f.pcm0, want)
			}
			if i == 9 || i == 14 {
				synctest.Wait()
				ev := <-leg.Events()
				if want := map[bool]string{true: "a", false: "b"}[i == 9]; ev.Type != media.EventMark || ev.Mark != want || !ev.Played || !time.Now().Equal(f.at) {
					t.Fatalf("after frame %d: %+v at +%s, want mark %s at once", i, ev, time.Since(t0), want)
				}
			}
		}

		time.Sleep(time.Second) // idle: the next prompt starts at once, on a new schedule
		t1 := time.Now()
		c := constClip(t, "c", 50, 300)
		if err := leg.Play(c, "c"); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if f := <-arrivals; !f.at.Equal(t1.Add(time.Duration(i) * media.FrameDuration)) {
				t.Fatalf("after idle, frame %d at +%s", i, f.at.Sub(t1))
			}
		}
		time.Sleep(5 * time.Millisecond)
		if err := leg.Clear(); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if ev := <-leg.Events(); ev.Type != media.EventMark || ev.Mark != "c" || ev.Played {
			t.Fatalf("after Clear: %+v, want mark c not played", ev)
		}
		time.Sleep(200 * time.Millisecond)
		select {
		case f := <-arrivals:
			t.Fatalf("frame (kind 0x%02x) sent after Clear", f.kind)
		default:
		}

		_ = leg.Hangup("done")
		if f := <-arrivals; f.kind != kindHangup {
			t.Fatalf("got kind 0x%02x, want the hangup frame", f.kind)
		}
		for range leg.Events() {
		}
	})
}

// TestIdleTimeout checks that a call with no inbound audio for IdleTimeout is hung up, and that
// audio keeps it alive.
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leg, ast, arrivals := pipeCall(t, Config{}, true)
		t0 := time.Now()
		silence := frame(kindSlin, make([]byte, frameBytes))
		for range 5 { // 5 s of audio, one frame a second: alive
			time.Sleep(time.Second)
			if _, err := ast.Write(silence); err != nil {
				t.Fatal(err)
			}
		}
		var last media.Event
		for ev := range leg.Events() {
			last = ev
		}
		if !errors.Is(last.Err, ErrIdle) {
			t.Fatalf("leg ended with %v, want ErrIdle", last.Err)
		}
		if got := time.Since(t0); got != 5*time.Second+DefaultIdleTimeout {
			t.Fatalf("ended after %s, want 15s", got)
		}
		if f := <-arrivals; f.kind != kindHangup {
			t.Fatalf("got kind 0x%02x, want the hangup frame", f.kind)
		}
	})
}

// TestNoUUID checks that a connection that sends nothing is closed after IdleTimeout without
// reaching the flow.
func TestNoUUID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, arrivals := pipeCall(t, Config{IdleTimeout: 2 * time.Second}, false)
		t0 := time.Now()
		for range arrivals {
		}
		if got := time.Since(t0); got != 2*time.Second {
			t.Fatalf("closed after %s, want 2s", got)
		}
	})
}

// repeatReader yields the same bytes forever.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// TestInboundAllocs proves that receiving an audio or DTMF frame allocates nothing: frames are
// read into the leg's buffer, decoded into its PCM array and handed to the receiver, and the
// idle deadline is pushed back on a real TCP socket.
func TestInboundAllocs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	cfg := Config{}.withDefaults()
	for _, tt := range []struct {
		name  string
		frame []byte
	}{
		{"audio", frame(kindSlin, make([]byte, frameBytes))},
		{"dtmf", frame(kindDTMF, []byte("5"))},
	} {
		l := newLeg(c2, &cfg)
		l.fr.r = bufio.NewReader(&repeatReader{data: tt.frame})
		go func() { // the flow, draining digits
			for range l.rx.Events() {
			}
		}()
		allocs := testing.AllocsPerRun(1000, func() {
			kind, p, err := l.fr.next()
			if err != nil {
				t.Fatal(err)
			}
			if err := l.handle(kind, p); err != nil {
				t.Fatal(err)
			}
		})
		l.rx.Hangup(nil)
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per inbound frame, want 0", tt.name, allocs)
		}
	}
}
