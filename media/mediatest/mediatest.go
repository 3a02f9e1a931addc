// Package mediatest provides an in-memory media.Leg for flow tests: the test plays the caller
// (pressing keys, hanging up) and sees every prompt the flow plays, with no sockets.
package mediatest

import (
	"sync"

	"github.com/callproof/callproof/media"
)

// Leg is an in-memory media.Leg. The flow drives it through the media.Leg methods; the test
// drives the caller's side through Press, HangUp and the OnPlay hook.
type Leg struct {
	rx   *media.Receiver
	info media.Info

	mu       sync.Mutex
	played   []string
	cleared  int
	pending  []string // marks queued but not acknowledged (HoldMarks mode)
	hold     bool
	hungUp   bool
	reason   string
	onPlay   func(l *Leg, id string)
	closedCh chan struct{}
}

var _ media.Leg = (*Leg)(nil)

// Option configures a Leg.
type Option func(*Leg)

// OnPlay registers a hook called (on the flow's goroutine) each time the flow plays a clip,
// with the clip's mark name. A scripted caller answers prompts from it.
func OnPlay(fn func(l *Leg, mark string)) Option { return func(l *Leg) { l.onPlay = fn } }

// HoldMarks makes the leg hold mark acknowledgements until Finish is called, so a test can
// press keys while a prompt is still "playing" (barge-in).
func HoldMarks() Option { return func(l *Leg) { l.hold = true } }

// WithReceiver sets the receiver configuration (DTMF mode, detector).
func WithReceiver(cfg media.ReceiverConfig) Option {
	return func(l *Leg) { l.rx = media.NewReceiver(cfg) }
}

// NewLeg returns a leg that has already reported start.
func NewLeg(start *media.Start, opts ...Option) *Leg {
	l := &Leg{info: media.Info{Transport: "test", NativeMarks: true}, closedCh: make(chan struct{})}
	for _, o := range opts {
		o(l)
	}
	if l.rx == nil {
		l.rx = media.NewReceiver(media.ReceiverConfig{Buffer: 256})
	}
	if start.Transport == "" {
		start.Transport = "test"
	}
	l.rx.Start(start)
	return l
}

// Events implements media.Leg.
func (l *Leg) Events() <-chan media.Event { return l.rx.Events() }

// Play implements media.Leg: it records the mark, calls the OnPlay hook and acknowledges the
// mark at once unless HoldMarks is set.
func (l *Leg) Play(clip *media.Clip, mark string) error {
	l.mu.Lock()
	if l.hungUp {
		l.mu.Unlock()
		return media.ErrLegClosed
	}
	l.played = append(l.played, mark)
	hold := l.hold
	if hold {
		l.pending = append(l.pending, mark)
	}
	fn := l.onPlay
	l.mu.Unlock()
	if !hold {
		l.rx.Mark(mark, true)
	}
	if fn != nil {
		fn(l, mark)
	}
	return nil
}

// Clear implements media.Leg: held marks are acknowledged as not played.
func (l *Leg) Clear() error {
	l.mu.Lock()
	if l.hungUp {
		l.mu.Unlock()
		return media.ErrLegClosed
	}
	l.cleared++
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, m := range pending {
		l.rx.Mark(m, false)
	}
	return nil
}

// Hangup implements media.Leg.
func (l *Leg) Hangup(reason string) error {
	l.mu.Lock()
	if l.hungUp {
		l.mu.Unlock()
		return nil
	}
	l.hungUp = true
	l.reason = reason
	close(l.closedCh)
	l.mu.Unlock()
	l.rx.Hangup(media.ErrLegClosed)
	return nil
}

// Info implements media.Leg.
func (l *Leg) Info() media.Info { return l.info }

// Press sends each digit of digits as a platform digit event.
func (l *Leg) Press(digits string) {
	for i := 0; i < len(digits); i++ {
		l.rx.Digit(digits[i], media.SourceEvent)
	}
}

// Finish acknowledges every held mark as played.
func (l *Leg) Finish() {
	l.mu.Lock()
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, m := range pending {
		l.rx.Mark(m, true)
	}
}

// Mark delivers a mark acknowledgement as the platform would, e.g. a late echo.
func (l *Leg) Mark(name string, played bool) { l.rx.Mark(name, played) }

// HangUp is the caller hanging up.
func (l *Leg) HangUp() { l.rx.Hangup(media.ErrHangup) }

// Played returns the marks of every clip played so far, in order.
func (l *Leg) Played() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.played...)
}

// Cleared reports how many times the flow cleared playback.
func (l *Leg) Cleared() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cleared
}

// Ended is closed once the flow hangs the leg up; Reason then says why.
func (l *Leg) Ended() <-chan struct{} { return l.closedCh }

// Reason is the reason the flow gave to Hangup.
func (l *Leg) Reason() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reason
}
