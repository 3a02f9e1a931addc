package media

import (
	"errors"
	"testing"
	"time"
)

// fakeDetector reports a digit whenever a block's first sample is non-zero (its value).
type fakeDetector struct{}

func (fakeDetector) Process(dst []byte, pcm []int16) []byte {
	if len(pcm) > 0 && pcm[0] != 0 {
		dst = append(dst, byte(pcm[0]))
	}
	return dst
}

func drain(r *Receiver) []Event {
	var evs []Event
	for ev := range r.Events() {
		evs = append(evs, ev)
	}
	return evs
}

func digitsOf(evs []Event) string {
	var s []byte
	for _, ev := range evs {
		if ev.Type == EventDTMF {
			s = append(s, ev.Digit)
		}
	}
	return string(s)
}

func TestReceiverModesAndDedup(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	tone := func(d byte) []int16 { return []int16{int16(d), 0} }
	cases := []struct {
		name string
		mode DTMFMode
		feed func(r *Receiver)
		want string
	}{
		{"events only ignores tones", DTMFEvents, func(r *Receiver) {
			r.Digit('1', SourceEvent)
			r.Audio(tone('2'))
		}, "1"},
		{"inband only ignores events", DTMFInband, func(r *Receiver) {
			r.Digit('1', SourceEvent)
			r.Audio(tone('2'))
		}, "2"},
		{"auto reports a key press seen both ways once", DTMFAuto, func(r *Receiver) {
			r.Digit('5', SourceEvent)
			r.Audio(tone('5'))
		}, "5"},
		{"auto keeps a repeated key from one source", DTMFAuto, func(r *Receiver) {
			r.Digit('5', SourceEvent)
			r.Digit('5', SourceEvent)
		}, "55"},
		{"auto keeps the same digit from another source after the window", DTMFAuto, func(r *Receiver) {
			r.Digit('5', SourceEvent)
			now = now.Add(time.Second)
			r.Audio(tone('5'))
		}, "55"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReceiver(ReceiverConfig{Mode: c.mode, Detector: fakeDetector{}, Now: clock})
			c.feed(r)
			r.Hangup(nil)
			evs := drain(r)
			if got := digitsOf(evs); got != c.want {
				t.Fatalf("digits %q, want %q", got, c.want)
			}
			last := evs[len(evs)-1]
			if last.Type != EventHangup || !errors.Is(last.Err, ErrHangup) {
				t.Fatalf("last event %+v, want hangup", last)
			}
		})
	}
}

func TestReceiverNeverBlocksAndHangsUpOnce(t *testing.T) {
	r := NewReceiver(ReceiverConfig{Buffer: 2})
	for i := 0; i < 10; i++ {
		r.Digit('1', SourceEvent)
	}
	r.Hangup(ErrProtocol)
	r.Hangup(nil)
	r.Digit('2', SourceEvent) // after the end: ignored, no panic
	if got := r.Stats().Dropped; got != 9 {
		t.Fatalf("dropped %d, want 9 (8 digits and the hangup event)", got)
	}
	if !errors.Is(r.Err(), ErrProtocol) {
		t.Fatalf("Err() = %v", r.Err())
	}
	if n := len(drain(r)); n != 2 {
		t.Fatalf("%d events buffered, want 2", n)
	}
}

func TestParseDTMFMode(t *testing.T) {
	for in, want := range map[string]DTMFMode{"": DTMFAuto, "auto": DTMFAuto, "events": DTMFEvents, "inband": DTMFInband} {
		if got, err := ParseDTMFMode(in); err != nil || got != want {
			t.Errorf("ParseDTMFMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseDTMFMode("both"); err == nil {
		t.Error("ParseDTMFMode(both) accepted")
	}
}

func TestNewClipPadsToFrames(t *testing.T) {
	c, err := NewClip("x", make([]int16, 161))
	if err != nil {
		t.Fatal(err)
	}
	if c.Frames() != 2 || len(c.Ulaw()) != 320 || c.Duration() != 40*time.Millisecond {
		t.Fatalf("frames %d ulaw %d duration %v", c.Frames(), len(c.Ulaw()), c.Duration())
	}
	if _, err := NewClip("empty", nil); !errors.Is(err, ErrBadAudio) {
		t.Fatalf("empty clip: %v", err)
	}
	n := 0
	build := func(*Clip) any { n++; return "wire" }
	if c.Encoded("k", build) != "wire" || c.Encoded("k", build) != "wire" || n != 1 {
		t.Fatalf("Encoded built %d times", n)
	}
}
