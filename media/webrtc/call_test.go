package webrtc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/dtmf"
)

// TestCallExchange runs a whole call over loopback through the real HTTP handler: offer and
// answer, PCMU both ways, digits as RFC 4733 events on Chrome's payload type decoded once
// each, a prompt paced in real time with its mark, barge-in, and DELETE.
func TestCallExchange(t *testing.T) {
	rec := &recorder{}
	ts := newTestServer(t, Config{MediaTimeout: 5 * time.Second,
		NewDetector: func() media.ToneDetector { return rec }}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, ts.URL, WithParams(map[string]string{"request": "delete", "lang": "es-US"}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := watchClient(c)
	leg := ts.leg(t)
	if info := leg.Info(); info.Transport != "webrtc" || info.NativeMarks {
		t.Errorf("Info = %+v, want webrtc without native marks", info)
	}

	st := expectEvent(t, leg, media.EventStart, 2*time.Second).Start
	if !strings.HasPrefix(st.CallID, "WR") || len(st.CallID) != 34 || st.CallID != c.CallID() {
		t.Errorf("CallID %q (client saw %q), want WR + 32 hex digits, the same on both sides", st.CallID, c.CallID())
	}
	if st.From != "" || st.To != "" || st.Transport != "webrtc" || st.StreamID != "" {
		t.Errorf("Start = %+v, want no numbers, transport webrtc, no stream id", st)
	}
	if st.Param("request") != "delete" || st.Param("lang") != "es-US" || st.Param("account") != "" {
		t.Errorf("Params = %v, want request=delete lang=es-US", st.Params)
	}
	if !strings.HasPrefix(c.Location(), ts.URL+OfferPath+"/") || strings.Contains(c.Location(), st.CallID) {
		t.Errorf("Location %q: want %s/<id> with an id that is not the call id", c.Location(), ts.URL+OfferPath)
	}

	t.Run("caller audio", func(t *testing.T) {
		sent := tone(697, 200*time.Millisecond)
		if err := c.SendAudio(sent); err != nil {
			t.Fatal(err)
		}
		want := ulawRoundTrip(sent)
		eventually(t, 3*time.Second, "caller tone at the receiver", func() bool {
			return sameAfterSilence(rec.samples(), want)
		})
	})

	t.Run("digits", func(t *testing.T) {
		const keyed = "12#11*"
		if err := c.SendDTMF('x'); !errors.Is(err, dtmf.ErrDigit) {
			t.Errorf("SendDTMF('x'): %v, want dtmf.ErrDigit", err)
		}
		for i := 0; i < len(keyed); i++ {
			if err := c.SendDTMF(keyed[i]); err != nil {
				t.Fatal(err)
			}
		}
		var got []byte
		for len(got) < len(keyed) {
			ev := expectEvent(t, leg, media.EventDTMF, 3*time.Second)
			if ev.Source != media.SourceRFC4733 {
				t.Errorf("digit source %s, want rfc4733", ev.Source)
			}
			got = append(got, ev.Digit)
		}
		if string(got) != keyed {
			t.Errorf("digits %q, want %q", got, keyed)
		}
		select { // each press's three end packets must not make a second digit
		case ev := <-leg.Events():
			t.Errorf("extra event after the digits: %s %q", ev.Type, ev.Digit)
		case <-time.After(300 * time.Millisecond):
		}
	})

	t.Run("prompt and mark", func(t *testing.T) {
		clip := toneClip(t, "welcome", 440, 400*time.Millisecond)
		before := cl.frames()
		began := time.Now()
		if err := leg.Play(clip, "welcome"); err != nil {
			t.Fatal(err)
		}
		ev := expectEvent(t, leg, media.EventMark, 3*time.Second)
		took := time.Since(began)
		if ev.Mark != "welcome" || !ev.Played {
			t.Errorf("mark %q played=%v, want welcome played", ev.Mark, ev.Played)
		}
		if took < 360*time.Millisecond || took > 1500*time.Millisecond {
			t.Errorf("a 400 ms prompt took %s to play: not paced in real time", took)
		}
		eventually(t, 2*time.Second, "prompt frames at the client", func() bool { return cl.frames()-before >= clip.Frames() })
		cl.mu.Lock()
		var got []int16
		for _, f := range cl.audio[before:] {
			got = append(got, f...)
		}
		cl.mu.Unlock()
		if want := ulawRoundTrip(clip.PCM()); !slices.Equal(got, want) {
			t.Errorf("client heard %d samples that differ from the prompt's %d", len(got), len(want))
		}
	})

	t.Run("barge-in", func(t *testing.T) {
		long := toneClip(t, "ask_pin", 500, 3*time.Second)
		next := toneClip(t, "no_input", 600, time.Second)
		before := cl.frames()
		if err := leg.Play(long, "ask_pin"); err != nil {
			t.Fatal(err)
		}
		if err := leg.Play(next, "no_input"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Second, "prompt under way", func() bool { return cl.frames()-before >= 5 })
		if err := leg.Clear(); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"ask_pin", "no_input"} {
			ev := expectEvent(t, leg, media.EventMark, time.Second)
			if ev.Mark != want || ev.Played {
				t.Errorf("mark %q played=%v, want %s not played", ev.Mark, ev.Played, want)
			}
		}
		time.Sleep(100 * time.Millisecond) // frames in flight land
		if n := cl.frames() - before; n >= long.Frames()/2 {
			t.Errorf("client got %d of the prompt's %d frames after Clear", n, long.Frames())
		}
	})

	t.Run("delete hangs up", func(t *testing.T) {
		if err := c.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		ev := expectEvent(t, leg, media.EventHangup, 3*time.Second)
		if !errors.Is(ev.Err, media.ErrHangup) {
			t.Errorf("hangup err %v, want media.ErrHangup", ev.Err)
		}
		if _, ok := <-leg.Events(); ok {
			t.Error("events continue after the hangup")
		}
		if err := leg.Play(toneClip(t, "x", 440, 20*time.Millisecond), "x"); !errors.Is(err, media.ErrLegClosed) {
			t.Errorf("Play after hangup: %v, want ErrLegClosed", err)
		}
		cl.waitClosed(t, 3*time.Second)
		eventually(t, 3*time.Second, "call torn down", func() bool { return ts.h.Calls() == 0 })
		if err := c.SendDTMF('1'); !errors.Is(err, ErrClientClosed) {
			t.Errorf("SendDTMF after the call: %v, want ErrClientClosed", err)
		}
		if err := c.SendAudio(make([]int16, 160)); !errors.Is(err, ErrClientClosed) {
			t.Errorf("SendAudio after the call: %v, want ErrClientClosed", err)
		}
	})
}

// TestCallEnds covers the other ways a call ends and what each side sees.
func TestCallEnds(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		opts       []ClientOption
		end        func(t *testing.T, ts *testServer, c *Client, leg media.Leg)
		wantErr    error
		within     time.Duration
		wantClient string
	}{
		{
			name:       "flow hangs up",
			end:        func(t *testing.T, _ *testServer, _ *Client, leg media.Leg) { _ = leg.Hangup("done") },
			wantErr:    media.ErrLegClosed,
			within:     2 * time.Second,
			wantClient: "hangup",
		},
		{
			name:       "browser closes",
			end:        func(t *testing.T, _ *testServer, c *Client, _ media.Leg) { _ = c.Close() },
			wantErr:    media.ErrHangup,
			within:     3 * time.Second,
			wantClient: "closed",
		},
		{
			name:       "media timeout",
			cfg:        Config{MediaTimeout: 400 * time.Millisecond},
			opts:       []ClientOption{WithContinuousAudio(false)},
			end:        func(t *testing.T, _ *testServer, _ *Client, _ media.Leg) {},
			wantErr:    ErrMediaTimeout,
			within:     2 * time.Second,
			wantClient: "hangup",
		},
		{
			name:       "server shuts down",
			end:        func(t *testing.T, ts *testServer, _ *Client, _ media.Leg) { go ts.h.Close() },
			wantErr:    ErrShutdown,
			within:     3 * time.Second,
			wantClient: "hangup",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, tt.cfg, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, ts.URL, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cl := watchClient(c)
			leg := ts.leg(t)
			expectEvent(t, leg, media.EventStart, 2*time.Second)
			began := time.Now()
			tt.end(t, ts, c, leg)
			ev := expectEvent(t, leg, media.EventHangup, tt.within)
			if !errors.Is(ev.Err, tt.wantErr) {
				t.Errorf("hangup err %v, want %v", ev.Err, tt.wantErr)
			}
			if tt.name == "media timeout" {
				if took := time.Since(began); took > 1500*time.Millisecond {
					t.Errorf("media timeout of 400ms ended the call after %s", took)
				}
			}
			if got := cl.waitClosed(t, 5*time.Second); got.Reason != tt.wantClient {
				t.Errorf("client closed with %q, want %q", got.Reason, tt.wantClient)
			}
			eventually(t, 3*time.Second, "call torn down", func() bool { return ts.h.Calls() == 0 })
		})
	}
}

// TestPCMA: a peer offering only A-law gets A-law both ways.
func TestPCMA(t *testing.T) {
	rec := &recorder{}
	ts := newTestServer(t, Config{NewDetector: func() media.ToneDetector { return rec }}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, ts.URL, WithCodecs("PCMA"), WithEventPayloadType(101))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := watchClient(c)
	leg := ts.leg(t)
	expectEvent(t, leg, media.EventStart, 2*time.Second)

	clip := toneClip(t, "welcome", 1000, 200*time.Millisecond)
	if err := leg.Play(clip, "welcome"); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, leg, media.EventMark, 2*time.Second)
	eventually(t, 2*time.Second, "prompt at the client", func() bool { return cl.frames() >= clip.Frames() })
	if got, want := cl.samples()[:len(clip.PCM())], alawRoundTrip(clip.PCM()); !slices.Equal(got, want) {
		t.Error("client audio is not the A-law round trip of the prompt")
	}

	sent := tone(1209, 100*time.Millisecond)
	if err := c.SendAudio(sent); err != nil {
		t.Fatal(err)
	}
	want := alawRoundTrip(sent)
	eventually(t, 2*time.Second, "caller audio (A-law round trip) at the receiver", func() bool {
		return sameAfterSilence(rec.samples(), want)
	})
	if err := c.SendDTMF('7'); err != nil {
		t.Fatal(err)
	}
	if ev := expectEvent(t, leg, media.EventDTMF, 2*time.Second); ev.Digit != '7' {
		t.Errorf("digit %q, want 7 (telephone-event on PT 101)", ev.Digit)
	}
}
