package ivr

import (
	"context"
	"fmt"
	"time"

	"github.com/callproof/callproof/media"
)

// spec says how to collect one entry.
type spec struct {
	min, max   int  // digits, not counting '#'
	terminator bool // '#' ends the entry (and is required when the length varies)
}

// conversation is the flow's view of one leg: it plays prompts, tracks which marks are still
// outstanding, keeps digits keyed ahead of a question, and collects entries.
type conversation struct {
	leg     media.Leg
	events  <-chan media.Event
	prompts promptSource
	locale  string
	cfg     *Config

	pending     []string  // marks sent and not yet acknowledged, oldest first
	playingTill time.Time // fallback end of playback when marks do not come back
	typeahead   []byte    // digits pressed while nothing was being collected
	bargeIns    int
	digits      int         // digits received, for the call summary
	timer       *time.Timer // next's timeout, reused
}

// play queues one prompt in the conversation's locale.
func (c *conversation) play(id string) error {
	clip, err := c.prompts.Clip(c.locale, id)
	if err != nil {
		return fmt.Errorf("%w: %s/%s: %v", ErrPrompt, c.locale, id, err)
	}
	if err := c.leg.Play(clip, id); err != nil {
		return fmt.Errorf("%w: play %s: %v", ErrHangup, id, err)
	}
	c.pending = append(c.pending, id)
	now := time.Now()
	if c.playingTill.Before(now) {
		c.playingTill = now
	}
	c.playingTill = c.playingTill.Add(clip.Duration())
	return nil
}

// playing reports whether queued audio may still be playing.
func (c *conversation) playing() bool { return len(c.pending) > 0 }

// fallback is how long to wait for outstanding marks before assuming playback ended.
func (c *conversation) fallback() time.Duration {
	d := time.Until(c.playingTill) + c.cfg.MarkSlack
	if d < c.cfg.MarkSlack {
		d = c.cfg.MarkSlack
	}
	return d
}

// clear stops playback for barge-in; outstanding marks come back unplayed.
func (c *conversation) clear() error {
	if !c.playing() {
		return nil
	}
	c.bargeIns++
	c.pending = c.pending[:0]
	c.playingTill = time.Time{}
	if err := c.leg.Clear(); err != nil {
		return fmt.Errorf("%w: clear: %v", ErrHangup, err)
	}
	return nil
}

// next waits for the leg's next event, or for timeout (0: no timeout). It returns ok false on
// timeout.
func (c *conversation) next(ctx context.Context, timeout time.Duration) (media.Event, bool, error) {
	var tc <-chan time.Time
	if timeout > 0 {
		// One timer per conversation, reset for each wait: a new one per event was a fifth of
		// what a call allocated between its prompts. Stop and Reset leave no stale expiry in
		// the channel (Go 1.23 timers).
		if c.timer == nil {
			c.timer = time.NewTimer(timeout)
		} else {
			c.timer.Reset(timeout)
		}
		defer c.timer.Stop()
		tc = c.timer.C
	}
	select {
	case <-ctx.Done():
		return media.Event{}, false, fmt.Errorf("%w: %v", ErrHangup, context.Cause(ctx))
	case ev, open := <-c.events:
		if !open || ev.Type == media.EventHangup {
			return media.Event{}, false, ErrHangup
		}
		return ev, true, nil
	case <-tc:
		return media.Event{}, false, nil
	}
}

// handleMark accounts for a mark acknowledgement: it completes the oldest pending prompt of
// that name and every prompt queued before it. Marks of audio discarded by a clear come back
// unplayed, and a mark of a prompt no longer pending (a late echo from before a clear) is
// ignored: clear already stopped waiting for them.
func (c *conversation) handleMark(ev media.Event) {
	if !ev.Played {
		return
	}
	for i, id := range c.pending {
		if id == ev.Mark {
			c.pending = append(c.pending[:0], c.pending[i+1:]...)
			return
		}
	}
}

// finish waits until everything queued has played (marks back, or the fallback clock ran
// out). Digits pressed meanwhile barge in: playback is cleared and the digits are kept for the
// next question.
func (c *conversation) finish(ctx context.Context) error {
	for c.playing() {
		ev, ok, err := c.next(ctx, c.fallback())
		if err != nil {
			return err
		}
		if !ok { // marks did not come back in time; assume played
			c.pending = c.pending[:0]
			return nil
		}
		switch ev.Type {
		case media.EventMark:
			c.handleMark(ev)
		case media.EventDTMF:
			c.digits++
			c.typeahead = append(c.typeahead, ev.Digit)
			if err := c.clear(); err != nil {
				return err
			}
		}
	}
	return nil
}

// say plays prompts and waits for them to finish.
func (c *conversation) say(ctx context.Context, ids ...string) error {
	for _, id := range ids {
		if err := c.play(id); err != nil {
			return err
		}
	}
	return c.finish(ctx)
}

// entry is what one collection attempt produced.
type entry struct {
	digits  string
	timeout bool // nothing keyed before the first-digit timeout
}

// collect plays the prompts (the last is the question) and collects one entry with barge-in.
// Digits keyed ahead are consumed first and cut the prompt short.
func (c *conversation) collect(ctx context.Context, s spec, ids ...string) (entry, error) {
	for _, id := range ids {
		if err := c.play(id); err != nil {
			return entry{}, err
		}
	}
	buf := make([]byte, 0, s.max+1)
	done := false
	take := func(d byte) {
		if d == '#' {
			if s.terminator || len(buf) > 0 {
				done = true
			}
			return
		}
		if d == '*' { // '*' starts the entry over
			buf = buf[:0]
			return
		}
		buf = append(buf, d)
		if len(buf) >= s.max && (!s.terminator || s.min == s.max) {
			done = true
		}
		if len(buf) > s.max { // too long: keep collecting until '#', then reject
			buf = buf[:s.max+1]
		}
	}
	if len(c.typeahead) > 0 {
		if err := c.clear(); err != nil {
			return entry{}, err
		}
		ahead := c.typeahead
		c.typeahead = nil
		for i, d := range ahead {
			if d == '#' && len(buf) == 0 { // the end of an earlier entry
				continue
			}
			take(d)
			if done {
				c.typeahead = append(c.typeahead, ahead[i+1:]...)
				break
			}
		}
	}
	for !done {
		var timeout time.Duration
		switch {
		case len(buf) > 0:
			timeout = c.cfg.InterDigitTimeout
		case c.playing():
			timeout = c.fallback()
		default:
			timeout = c.cfg.FirstDigitTimeout
		}
		ev, ok, err := c.next(ctx, timeout)
		if err != nil {
			return entry{}, err
		}
		if !ok {
			switch {
			case len(buf) > 0: // inter-digit timeout ends the entry
				done = true
			case c.playing(): // marks lost: treat playback as over, start the first-digit clock
				c.pending = c.pending[:0]
			default:
				return entry{timeout: true}, nil
			}
			continue
		}
		switch ev.Type {
		case media.EventMark:
			c.handleMark(ev)
		case media.EventDTMF:
			c.digits++
			if err := c.clear(); err != nil {
				return entry{}, err
			}
			take(ev.Digit)
		}
	}
	return entry{digits: string(buf)}, nil
}

// valid reports whether an entry has an acceptable length for s.
func (s spec) valid(digits string) bool { return len(digits) >= s.min && len(digits) <= s.max }

// ask collects an entry with re-prompts (lead prompts, if any, play before the first asking): no_input after a silent timeout, invalid_input after a
// malformed entry (check returns false), each at most cfg.MaxRetries times. It returns
// ErrNoInput or ErrInvalidInput when the retries run out.
func (c *conversation) ask(ctx context.Context, id string, s spec, check func(string) bool, lead ...string) (string, error) {
	noInput, invalid := 0, 0
	ids := append(lead, id)
	for {
		e, err := c.collect(ctx, s, ids...)
		if err != nil {
			return "", err
		}
		switch {
		case e.timeout:
			noInput++
			if noInput > c.cfg.MaxRetries {
				return "", ErrNoInput
			}
			ids = []string{"no_input", id}
		case !s.valid(e.digits) || (check != nil && !check(e.digits)):
			invalid++
			if invalid > c.cfg.MaxRetries {
				return "", ErrInvalidInput
			}
			ids = []string{"invalid_input", id}
		default:
			return e.digits, nil
		}
	}
}
