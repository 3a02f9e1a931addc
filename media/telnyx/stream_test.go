package telnyx

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsjson"
)

// TestFullExchange runs one call over loopback the way Telnyx runs it: the start metadata and
// parameters reach the flow, a prompt plays and Telnyx's mark echo reports it played, caller
// audio delivered out of order reaches the receiver in order, a key pressed during the next
// prompt makes the flow clear it (its mark comes back unplayed), later digits arrive as
// events, and Telnyx's "stop" ends the leg.
func TestFullExchange(t *testing.T) {
	welcome := clipOf(t, "welcome", 200*time.Millisecond)
	askPin := clipOf(t, "ask_pin", 3*time.Second)
	rx := &tap{}
	type result struct {
		start  *media.Start
		marks  []media.Event
		digits []media.Event
		last   media.Event
		stats  Stats
	}
	done := make(chan result, 1)
	heard := make(chan struct{}) // the flow has every digit and both marks
	srv := newTestServer(t, Config{AuthToken: "s3cret", NewDetector: func() media.ToneDetector { return rx }},
		func(ctx context.Context, leg media.Leg) {
			var res result
			defer func() { done <- res }()
			if got := leg.Info(); got != (media.Info{Transport: "telnyx", NativeMarks: true}) {
				t.Errorf("Info = %+v", got)
			}
			ev := await(t, leg)
			if ev.Type != media.EventStart {
				t.Errorf("first event %v, want start", ev.Type)
				return
			}
			res.start = ev.Start
			if err := leg.Play(welcome, "welcome"); err != nil {
				t.Errorf("Play: %v", err)
			}
			if ev := await(t, leg); ev.Type != media.EventMark {
				t.Errorf("event %v, want the welcome mark", ev.Type)
				return
			} else {
				res.marks = append(res.marks, ev)
			}
			if err := leg.Play(askPin, "ask_pin"); err != nil {
				t.Errorf("Play: %v", err)
			}
			told := false
			for ev := range leg.Events() {
				switch ev.Type {
				case media.EventDTMF:
					res.digits = append(res.digits, ev)
					if len(res.digits) == 1 {
						if err := leg.Clear(); err != nil { // barge-in
							t.Errorf("Clear: %v", err)
						}
					}
				case media.EventMark:
					res.marks = append(res.marks, ev)
				case media.EventHangup:
					res.last = ev
				}
				if len(res.digits) == 4 && len(res.marks) == 2 && !told {
					close(heard)
					told = true
				}
			}
			res.stats = leg.(*Leg).Stats()
		})

	caller := make([]int16, 10*media.FrameSamples)
	for i := range caller {
		caller[i] = int16(i*97%4000 - 2000)
	}
	cl, err := Dial(context.Background(), srv.url(), CallParams{
		CallControlID: "v3:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ",
		StreamID:      "32de0dea-53cb-4b21-89a4-9e1819c043bc",
		From:          "+14155550100", To: "+18005550199",
		Params: map[string]string{"request": "delete", "lang": "es-US"},
		ClientState: ClientState(map[string]string{"account": "40001234", "request": "know_categories",
			"shaken_stir_attestation": "A", "shaken_stir_validated": "true"}),
		AuthToken: "s3cret",
	}, WithRealtimePlayback(true), WithOutOfOrder(3))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []media.SimEvent
	var audio []int16
	pressed := false
	stopped := make(chan error, 1)
	for ev := range cl.Events() {
		got = append(got, ev)
		switch ev.Kind {
		case media.SimAudio:
			audio = append(audio, ev.Audio...)
			if len(audio) > len(welcome.PCM()) && !pressed { // ask_pin is playing
				pressed = true
				if err := cl.SendAudio(caller); err != nil {
					t.Fatal(err)
				}
				for _, d := range []byte("512#") {
					if err := cl.SendDTMF(d); err != nil {
						t.Fatal(err)
					}
				}
				go func() {
					select {
					case <-heard:
					case <-time.After(5 * time.Second):
					}
					stopped <- cl.Stop()
				}()
			}
		}
	}
	if err := <-stopped; err != nil {
		t.Errorf("Stop: %v", err)
	}
	res := <-done

	want := &media.Start{CallID: "v3:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ",
		StreamID: "32de0dea-53cb-4b21-89a4-9e1819c043bc", Transport: "telnyx",
		From: "+14155550100", To: "+18005550199", Verstat: "TN-Validation-Passed-A",
		Params: map[string]string{"request": "delete", "lang": "es-US", "account": "40001234"}}
	if s := res.start; s == nil || s.CallID != want.CallID || s.StreamID != want.StreamID || s.Transport != want.Transport ||
		s.From != want.From || s.To != want.To || s.Verstat != want.Verstat || !maps.Equal(s.Params, want.Params) {
		t.Errorf("start = %+v, want %+v", res.start, want)
	}
	if len(res.marks) != 2 || res.marks[0].Mark != "welcome" || !res.marks[0].Played ||
		res.marks[1].Mark != "ask_pin" || res.marks[1].Played {
		t.Errorf("marks %+v, want welcome played, then ask_pin cleared", res.marks)
	}
	var digits []byte
	for _, ev := range res.digits {
		digits = append(digits, ev.Digit)
		if ev.Source != media.SourceEvent {
			t.Errorf("digit source %v, want event", ev.Source)
		}
	}
	if string(digits) != "512#" {
		t.Errorf("digits %q, want 512#", digits)
	}
	if res.last.Type != media.EventHangup || !errors.Is(res.last.Err, media.ErrHangup) || errors.Is(res.last.Err, media.ErrProtocol) {
		t.Errorf("last event %+v, want a hangup with ErrHangup", res.last)
	}
	// The caller's audio reached the receiver in order although it was sent shuffled.
	wantPCM := wsjson.Ulaw.Decode(make([]int16, len(caller)), wsjson.Ulaw.Append(nil, caller))
	if got := rx.samples(); !slices.Equal(got, wantPCM) {
		t.Errorf("receiver got %d samples out of order or altered, want the caller's %d in order", len(got), len(wantPCM))
	}
	if s := res.stats; s.FramesIn != 10 || s.Reordered != 6 || s.Late != 0 || s.Gaps != 0 ||
		s.MarksOut != 2 || s.MarksIn != 2 || s.Clears != 1 || s.Errors != 0 {
		t.Errorf("stats %+v, want 10 frames in (6 reordered), 2 marks each way, 1 clear", s)
	}
	// The client heard welcome whole, then part of ask_pin until the clear.
	if !slices.Equal(audio[:len(welcome.PCM())], wsjson.Ulaw.Decode(make([]int16, len(welcome.PCM())), welcome.Ulaw())) {
		t.Errorf("welcome audio altered")
	}
	var kinds []media.SimKind
	for _, ev := range got {
		if ev.Kind != media.SimAudio {
			kinds = append(kinds, ev.Kind)
		}
	}
	if want := []media.SimKind{media.SimMark, media.SimMark, media.SimClear, media.SimClosed}; !slices.Equal(kinds, want) {
		t.Errorf("client events %v, want mark, mark, clear, closed", kinds)
	}
	if last := got[len(got)-1]; last.Code != websocket.CloseNormalClosure {
		t.Errorf("closed with %d %q, want 1000", last.Code, last.Reason)
	}
	if err := cl.Err(); err != nil {
		t.Errorf("the server broke Telnyx's protocol: %v", err)
	}
}
