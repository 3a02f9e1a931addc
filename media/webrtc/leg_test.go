package webrtc

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/dtmf"
)

// sentPacket is one packet a fakeWriter saw.
type sentPacket struct {
	at      time.Time
	hdr     rtp.Header
	payload []byte
}

// fakeWriter stands in for pion's SRTP write stream.
type fakeWriter struct {
	mu      sync.Mutex
	packets []sentPacket
	keep    bool
}

func (f *fakeWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if !f.keep {
		return len(payload), nil
	}
	f.mu.Lock()
	f.packets = append(f.packets, sentPacket{at: time.Now(), hdr: *h, payload: slices.Clone(payload)})
	f.mu.Unlock()
	return len(payload), nil
}

func (f *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }

func (f *fakeWriter) sent() []sentPacket {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.packets)
}

// bareLeg is a leg without a peer connection whose track is bound to w.
func bareLeg(cfg Config, w *fakeWriter, audio codecKind) *Leg {
	cfg = cfg.withDefaults()
	l := newLeg("id", &media.Start{CallID: "WRtest", Transport: "webrtc"}, &cfg, zap.NewNop(), nil)
	pt := uint8(0)
	if audio == kindPCMA {
		pt = 8
	}
	l.track.b, l.track.ok = binding{w: w, ssrc: 0x1234, audio: audio, pt: pt, evPT: 126, hasEv: true}, true
	return l
}

func recvEvent(t *testing.T, l *Leg) media.Event {
	t.Helper()
	ev, ok := <-l.Events()
	if !ok {
		t.Fatal("events closed")
	}
	return ev
}

// TestWriterPacing checks the outbound clock in a synctest bubble, where time is exact: frame k
// of back-to-back prompts goes out at k×20 ms with consecutive sequence numbers, the RTP clock
// follows the wall clock through pauses, a talkspurt's first packet has the marker bit, marks
// follow the last frame, Clear stops a prompt at once, and the media watchdog ends the call.
func TestWriterPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &fakeWriter{keep: true}
		l := bareLeg(Config{MediaTimeout: 10 * time.Second}, w, kindPCMU)
		go l.writeLoop()
		l.markStarted()
		if ev := recvEvent(t, l); ev.Type != media.EventStart {
			t.Fatalf("first event %s", ev.Type)
		}
		t0 := time.Now()
		a := toneClip(t, "a", 440, 200*time.Millisecond) // 10 frames
		b := toneClip(t, "b", 550, 60*time.Millisecond)  // 3 frames
		if err := l.Play(a, "a"); err != nil {
			t.Fatal(err)
		}
		if err := l.Play(b, "b"); err != nil {
			t.Fatal(err)
		}
		for _, want := range []struct {
			mark string
			at   time.Duration
		}{{"a", 180 * time.Millisecond}, {"b", 240 * time.Millisecond}} {
			ev := recvEvent(t, l)
			if ev.Type != media.EventMark || ev.Mark != want.mark || !ev.Played {
				t.Fatalf("event %+v, want mark %s played", ev, want.mark)
			}
			if got := time.Since(t0); got != want.at {
				t.Errorf("mark %s at %s, want %s (after its last frame)", want.mark, got, want.at)
			}
		}

		time.Sleep(500 * time.Millisecond) // a pause, then a new talkspurt
		c := toneClip(t, "c", 660, 40*time.Millisecond)
		if err := l.Play(c, "c"); err != nil {
			t.Fatal(err)
		}
		if ev := recvEvent(t, l); ev.Mark != "c" || !ev.Played {
			t.Fatalf("event %+v, want mark c played", ev)
		}

		pk := w.sent()
		if len(pk) != 15 {
			t.Fatalf("%d packets, want 15", len(pk))
		}
		want := slices.Concat(a.Ulaw(), b.Ulaw(), c.Ulaw())
		for i, p := range pk {
			at := p.at.Sub(t0)
			if i < 13 && at != time.Duration(i)*media.FrameDuration {
				t.Errorf("packet %d sent at %s, want %s", i, at, time.Duration(i)*media.FrameDuration)
			}
			if p.hdr.SequenceNumber != pk[0].hdr.SequenceNumber+uint16(i) {
				t.Errorf("packet %d has sequence %d, want %d", i, p.hdr.SequenceNumber, pk[0].hdr.SequenceNumber+uint16(i))
			}
			// The RTP clock is the wall clock: 8 samples per millisecond since the first packet.
			if got, want := p.hdr.Timestamp-pk[0].hdr.Timestamp, uint32(at*media.SampleRate/time.Second); got != want {
				t.Errorf("packet %d timestamp +%d, want +%d", i, got, want)
			}
			if p.hdr.Marker != (i == 0 || i == 13) {
				t.Errorf("packet %d marker %v", i, p.hdr.Marker)
			}
			if p.hdr.PayloadType != 0 || p.hdr.SSRC != 0x1234 || p.hdr.Version != 2 {
				t.Errorf("packet %d header %+v", i, p.hdr)
			}
			if !slices.Equal(p.payload, want[i*160:(i+1)*160]) {
				t.Errorf("packet %d payload is not frame %d of the prompts", i, i)
			}
		}

		// Barge-in: Clear cuts the prompt at the next frame and the queued one never starts.
		long := toneClip(t, "long", 440, time.Second)
		_ = l.Play(long, "long")
		_ = l.Play(c, "queued")
		time.Sleep(110 * time.Millisecond)
		if err := l.Clear(); err != nil {
			t.Fatal(err)
		}
		for _, mark := range []string{"long", "queued"} {
			if ev := recvEvent(t, l); ev.Type != media.EventMark || ev.Mark != mark || ev.Played {
				t.Fatalf("event %+v, want mark %s not played", ev, mark)
			}
		}
		time.Sleep(time.Second)
		// The prompt followed c back to back: its frames were due 20, 40, ... 100 ms after Play.
		if n := len(w.sent()) - 15; n != 5 {
			t.Errorf("%d frames of the cleared prompt went out, want 5", n)
		}

		// Inbound RTP holds the watchdog off; silence ends the call MediaTimeout after it.
		l.lastRTP.Store(int64(time.Since(l.epoch)))
		last := time.Now()
		ev := recvEvent(t, l)
		if ev.Type != media.EventHangup || !errors.Is(ev.Err, ErrMediaTimeout) {
			t.Fatalf("event %+v, want a hangup for the media timeout", ev)
		}
		if got := time.Since(last); got != 10*time.Second {
			t.Errorf("media timeout after %s of silence, want 10s", got)
		}
		<-l.writerDone
		if err := l.Play(c, "late"); !errors.Is(err, media.ErrLegClosed) {
			t.Errorf("Play after the end: %v", err)
		}
		if err := l.Clear(); !errors.Is(err, media.ErrLegClosed) {
			t.Errorf("Clear after the end: %v", err)
		}
	})
}

func TestPlayRefusals(t *testing.T) {
	l := bareLeg(Config{}, &fakeWriter{}, kindPCMU)
	c := toneClip(t, "c", 440, 20*time.Millisecond)
	for _, tt := range []struct {
		clip *media.Clip
		mark string
	}{{nil, "m"}, {c, ""}, {c, string(make([]byte, 300))}, {c, "\xff"}} {
		if err := l.Play(tt.clip, tt.mark); !errors.Is(err, ErrInvalidPlay) {
			t.Errorf("Play(%v, %q): %v, want ErrInvalidPlay", tt.clip != nil, tt.mark, err)
		}
	}
	for i := 0; i < outQueue; i++ {
		if err := l.Play(c, "m"); err != nil {
			t.Fatalf("Play %d: %v", i, err)
		}
	}
	if err := l.Play(c, "m"); !errors.Is(err, media.ErrBackpressure) {
		t.Errorf("Play on a full queue: %v, want ErrBackpressure", err)
	}
}

// TestHotPathsDoNotAllocate proves the per-frame work is allocation-free: writing a 20 ms
// frame, and handling an inbound audio packet or telephone-event packet.
func TestHotPathsDoNotAllocate(t *testing.T) {
	l := bareLeg(Config{}, &fakeWriter{}, kindPCMU)
	clip := toneClip(t, "c", 440, time.Second)
	w := newRTPWriter(l.track, 1)
	if n := testing.AllocsPerRun(200, func() {
		if err := l.writeFrame(w, clip, 160, 1000, false); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("writeFrame allocated %.1f times per frame", n)
	}

	var kinds ptKinds
	kinds[0], kinds[126] = kindPCMU, kindEvent
	ev, err := dtmf.NewReceiver(dtmf.ReceiverConfig{PayloadType: 126})
	if err != nil {
		t.Fatal(err)
	}
	in := &inbound{l: l, primary: true, kinds: kinds, pcm: make([]int16, readBufSize),
		keys: make([]dtmf.KeyPress, 0, 8), events: []eventRx{{pt: 126, r: ev}}}
	l.markStarted()
	audio := marshal(t, rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1, Timestamp: 160, SSRC: 9}, make([]byte, 160))
	event := marshal(t, rtp.Header{Version: 2, PayloadType: 126, SequenceNumber: 2, Timestamp: 320, SSRC: 9},
		dtmf.Event{Code: 5, Volume: 10, Duration: 800}.Marshal())
	now := time.Now()
	if n := testing.AllocsPerRun(200, func() {
		in.handle(audio, now)
		in.handle(event, now)
	}); n != 0 {
		t.Errorf("handling an audio and an event packet allocated %.1f times", n)
	}
	if s := l.Stats(); s.PacketsIn == 0 || s.FramesIn == 0 || s.BadPackets != 0 {
		t.Errorf("stats %+v: packets were not all handled", s)
	}
}

func marshal(t *testing.T, h rtp.Header, payload []byte) []byte {
	t.Helper()
	b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
