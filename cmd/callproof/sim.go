package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/dtmf"
	"github.com/callproof/callproof/media/twilio"
	"github.com/callproof/callproof/prompts"
)

// simCall is the platform's side of one call, whatever the platform: the simulated caller
// keys digits (as the platform's digit events or as tones in the audio) and watches what the
// server plays.
type simCall interface {
	SendDTMF(d byte) error
	SendAudio(pcm []int16) error
	Events() <-chan media.SimEvent
	Close() error
}

// outcomes are the prompts that end a call.
var outcomes = map[string]bool{"verified": true, "partially_verified": true, "not_verified": true,
	"locked_out": true, "opt_out_confirmed": true, "technical_difficulty": true}

// twilioSim adapts the Twilio client to simCall: its marks carry the prompt ids.
type twilioSim struct {
	c      *twilio.Client
	events chan media.SimEvent
	buf    []byte
}

func newTwilioSim(c *twilio.Client) *twilioSim {
	s := &twilioSim{c: c, events: make(chan media.SimEvent, 256)}
	go func() {
		defer close(s.events)
		for ev := range c.Events() {
			switch ev.Kind {
			case "media":
				pcm := media.DecodeUlaw(make([]int16, len(ev.Audio)), ev.Audio)
				s.events <- media.SimEvent{Kind: media.SimAudio, Audio: pcm}
			case "mark":
				s.events <- media.SimEvent{Kind: media.SimMark, Mark: ev.Mark}
			case "played":
				if !ev.Cleared {
					s.events <- media.SimEvent{Kind: media.SimPlayed, Mark: ev.Mark}
				}
			case "clear":
				s.events <- media.SimEvent{Kind: media.SimClear}
			case "error":
				s.events <- media.SimEvent{Kind: media.SimClosed, Reason: ev.Err.Error()}
			case "closed":
				s.events <- media.SimEvent{Kind: media.SimClosed, Code: ev.CloseCode, Reason: ev.CloseText}
			}
		}
	}()
	return s
}

func (s *twilioSim) SendDTMF(d byte) error { return s.c.SendDTMF(d) }
func (s *twilioSim) SendAudio(pcm []int16) error {
	s.buf = media.EncodeUlaw(append(s.buf[:0], make([]byte, len(pcm))...), pcm)
	return s.c.SendAudio(s.buf)
}
func (s *twilioSim) Events() <-chan media.SimEvent { return s.events }
func (s *twilioSim) Close() error                  { return s.c.Close() }

// simDriver answers prompts for one call. With named marks (Twilio) it knows each prompt by
// its mark; otherwise it recognises prompts from the audio by their opening frames.
type simDriver struct {
	sim        simCall
	answers    map[string]string
	namedMarks bool
	// played is true when the platform reports SimPlayed (Twilio): in real time the caller
	// then answers once a prompt has played, not as soon as it has arrived.
	played   bool
	index    *media.PromptIndex
	realtime bool
	bargeIn  bool
	inband   bool
	// paced is true when the sim paces what the driver sends itself (callproof load's
	// 20 ms clock): answer then queues digits and tones without sleeping.
	paced bool
	out   io.Writer

	prompts []string
	outcome string
	closed  media.SimEvent

	// passcode fetches the one-time passcode sent for this call (the demo inbox), when the
	// answers do not give one.
	passcode func() (string, error)

	// audio recognition
	prev      []int16
	carry     []int16
	current   string
	remaining int
}

// promptIndex indexes every prompt in every locale as the platform receives it: μ-law
// platforms hear the prompts after a μ-law round trip.
func promptIndex(cat *prompts.Catalog, ulaw bool) (*media.PromptIndex, error) {
	var clips []*media.Clip
	for _, loc := range cat.Locales() {
		for _, id := range cat.IDs() {
			c, err := cat.Clip(loc, id)
			if err != nil {
				return nil, err
			}
			if ulaw {
				if c, err = media.NewClip(id, media.DecodeUlaw(make([]int16, len(c.Ulaw())), c.Ulaw())); err != nil {
					return nil, err
				}
			}
			clips = append(clips, c)
		}
	}
	return media.NewPromptIndex(clips), nil
}

func (d *simDriver) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-d.sim.Events():
			if !ok {
				return nil
			}
			if err := d.handle(ev); err != nil {
				return err
			}
			if ev.Kind == media.SimClosed {
				d.closed = ev
				return nil
			}
		}
	}
}

func (d *simDriver) handle(ev media.SimEvent) error {
	switch ev.Kind {
	case media.SimMark:
		if !d.namedMarks {
			return nil
		}
		d.heard(ev.Mark)
		if d.bargeIn || !d.realtime || !d.played {
			return d.answer(ev.Mark)
		}
	case media.SimPlayed:
		if d.namedMarks && d.realtime && !d.bargeIn {
			return d.answer(ev.Mark)
		}
	case media.SimClear:
		d.remaining = 0
	case media.SimAudio:
		if d.namedMarks {
			return nil
		}
		return d.audio(ev.Audio)
	}
	return nil
}

// audio recognises prompt starts in whole 20 ms frames and answers when a prompt starts
// (barge-in) or has been received whole.
func (d *simDriver) audio(pcm []int16) error {
	d.carry = append(d.carry, pcm...)
	for len(d.carry) >= media.FrameSamples {
		frame := append([]int16(nil), d.carry[:media.FrameSamples]...)
		d.carry = d.carry[media.FrameSamples:]
		if d.prev != nil {
			if clip, ok := d.index.Match(append(append([]int16(nil), d.prev...), frame...)); ok {
				d.current, d.remaining = clip.ID(), clip.Frames()-2
				d.heard(clip.ID())
				if d.bargeIn {
					if err := d.answer(clip.ID()); err != nil {
						return err
					}
				}
				if d.remaining <= 0 && !d.bargeIn {
					if err := d.answer(d.current); err != nil {
						return err
					}
				}
				d.prev = frame
				continue
			}
		}
		d.prev = frame
		if d.remaining > 0 {
			d.remaining--
			if d.remaining == 0 && !d.bargeIn {
				if err := d.answer(d.current); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (d *simDriver) heard(id string) {
	d.prompts = append(d.prompts, id)
	fmt.Fprintf(d.out, "prompt %s\n", id)
	if outcomes[id] {
		d.outcome = id
	}
}

// answer keys the digits for prompt id, as digit events or as tones in the audio.
func (d *simDriver) answer(id string) error {
	digits, ok := d.answers[id]
	if !ok && id == "ask_otp" && d.passcode != nil {
		code, err := d.passcode()
		if err != nil {
			fmt.Fprintf(d.out, "  no passcode: %v\n", err)
			return nil
		}
		digits, ok = code+"#", true
	}
	if !ok {
		return nil
	}
	fmt.Fprintf(d.out, "  keyed %d digits\n", len(strings.TrimSuffix(digits, "#")))
	if d.inband {
		pcm := dtmf.Tones(digits, dtmf.GenOptions{On: 80 * time.Millisecond, Off: 80 * time.Millisecond})
		for len(pcm)%media.FrameSamples != 0 {
			pcm = append(pcm, 0)
		}
		for i := 0; i < len(pcm); i += media.FrameSamples {
			if err := d.sim.SendAudio(pcm[i : i+media.FrameSamples]); err != nil {
				return err
			}
			if d.realtime && !d.paced {
				time.Sleep(media.FrameDuration)
			}
		}
		return nil
	}
	for i := 0; i < len(digits); i++ {
		if err := d.sim.SendDTMF(digits[i]); err != nil {
			return err
		}
		if d.realtime && !d.paced {
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}
