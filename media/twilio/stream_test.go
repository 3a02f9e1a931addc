package twilio

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
)

// pcmTap is a ToneDetector that keeps every sample it is given, and "detects" digit '7' in a
// frame whose first sample is the marker value, so the in-band path can be checked too.
type pcmTap struct {
	mu  sync.Mutex
	pcm []int16
}

const tapMarker = int16(-32124) // μ-law 0x00 decodes to this

func (d *pcmTap) Process(dst []byte, pcm []int16) []byte {
	d.mu.Lock()
	d.pcm = append(d.pcm, pcm...)
	d.mu.Unlock()
	if len(pcm) > 0 && pcm[0] == tapMarker {
		dst = append(dst, '7')
	}
	return dst
}

func (d *pcmTap) samples() []int16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.pcm)
}

// TestFullExchange runs one call over loopback: the start parameters reach the flow, caller
// audio arrives decoded, digits arrive as events with SourceEvent, and a prompt goes out as
// media messages of whole 20 ms frames no longer than a second, followed by its mark, whose
// echo the flow sees as played.
func TestFullExchange(t *testing.T) {
	tap := &pcmTap{}
	clip := toneClip(t, "welcome", 2500*time.Millisecond)
	type result struct {
		start  *media.Start
		digits []media.Event
		marks  []media.Event
		stats  Stats
		last   media.Event
	}
	done := make(chan result, 1)
	srv := newServer(t, Config{NewDetector: func() media.ToneDetector { return tap }}, func(ctx context.Context, leg media.Leg) {
		var res result
		defer func() { done <- res }()
		if got := leg.Info(); got != (media.Info{Transport: "twilio", NativeMarks: true}) {
			t.Errorf("Info = %+v", got)
		}
		ev := nextEvent(t, ctx, leg, 5*time.Second)
		if ev.Type != media.EventStart {
			t.Errorf("first event %v, want start", ev.Type)
			return
		}
		res.start = ev.Start
		if err := leg.Play(clip, "welcome"); err != nil {
			t.Errorf("Play: %v", err)
		}
		for len(res.digits) < 4 {
			ev := nextEvent(t, ctx, leg, 5*time.Second)
			switch ev.Type {
			case media.EventDTMF:
				res.digits = append(res.digits, ev)
			case media.EventMark:
				res.marks = append(res.marks, ev)
			default:
				t.Errorf("unexpected %v event (err %v)", ev.Type, ev.Err)
				return
			}
		}
		res.stats = leg.(*Leg).Stats()
		_ = leg.Hangup("done")
		evs := drain(leg)
		res.last = evs[len(evs)-1]
	})

	caller := make([]byte, 5*160)
	for i := range caller {
		caller[i] = byte(i*7 + 1)
	}
	caller[2*160] = 0x00 // frame 3 carries the tap's marker: an in-band '7'

	ctx := context.Background()
	cl, err := Dial(ctx, srv.wsURL(), CallParams{
		CallSid: "CA0123456789abcdef0123456789abcdef", StreamSid: "MZ0123456789abcdef0123456789abcdef",
		From: "+14155550100", To: "+18005550199", Verstat: "TN-Validation-Passed-A",
		Params: map[string]string{"request": "delete", "lang": "es-US", "account": "40001234"},
	}, WithRecording(true))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var evs []ClientEvent
	for ev := range cl.Events() {
		evs = append(evs, ev)
		if ev.Kind == "played" && ev.Mark == "welcome" {
			if err := cl.SendAudio(caller); err != nil {
				t.Fatal(err)
			}
			for _, d := range []byte("12#") {
				if err := cl.SendDTMF(d); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	res := <-done

	want := &media.Start{CallID: "CA0123456789abcdef0123456789abcdef", StreamID: "MZ0123456789abcdef0123456789abcdef",
		Transport: "twilio", From: "+14155550100", To: "+18005550199", Verstat: "TN-Validation-Passed-A",
		Params: map[string]string{"request": "delete", "lang": "es-US", "account": "40001234"}}
	if res.start == nil || res.start.CallID != want.CallID || res.start.StreamID != want.StreamID ||
		res.start.Transport != want.Transport || res.start.From != want.From || res.start.To != want.To ||
		res.start.Verstat != want.Verstat || !mapsEqual(res.start.Params, want.Params) {
		t.Errorf("start = %+v, want %+v", res.start, want)
	}

	var gotDigits []byte
	for _, ev := range res.digits {
		gotDigits = append(gotDigits, ev.Digit)
		wantSrc := media.SourceEvent
		if ev.Digit == '7' {
			wantSrc = media.SourceInband
		}
		if ev.Source != wantSrc {
			t.Errorf("digit %c source %v, want %v", ev.Digit, ev.Source, wantSrc)
		}
	}
	if string(gotDigits) != "712#" {
		t.Errorf("digits %q, want 712# (in-band 7 from the audio, then the events)", gotDigits)
	}
	if len(res.marks) != 1 || res.marks[0].Mark != "welcome" || !res.marks[0].Played {
		t.Errorf("marks %+v, want welcome played", res.marks)
	}
	if res.last.Type != media.EventHangup || !errors.Is(res.last.Err, media.ErrLegClosed) {
		t.Errorf("last event %+v, want hangup with ErrLegClosed", res.last)
	}

	// Caller audio reached the receiver decoded, frame by frame.
	wantPCM := media.DecodeUlaw(make([]int16, len(caller)), caller)
	if got := tap.samples(); !slices.Equal(got, wantPCM) {
		t.Errorf("receiver got %d samples, want the %d decoded from the caller's μ-law", len(got), len(wantPCM))
	}
	if res.stats.FramesIn != 5 || res.stats.FramesOut != 3 || res.stats.MarksOut != 1 || res.stats.MarksIn != 1 {
		t.Errorf("stats %+v, want 5 frames in, 3 out, 1 mark each way", res.stats)
	}

	// The prompt went out as media messages of whole frames, at most a second each, then the mark.
	var audio []byte
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
		switch ev.Kind {
		case "media":
			if len(ev.Audio) == 0 || len(ev.Audio) > 8000 || len(ev.Audio)%160 != 0 {
				t.Errorf("media message of %d bytes; want whole 160-byte frames, at most 8000", len(ev.Audio))
			}
			audio = append(audio, ev.Audio...)
		case "mark":
			if !bytes.Equal(ev.Audio, clip.Ulaw()) {
				t.Errorf("audio recorded before mark %q is %d bytes, want the clip's %d", ev.Mark, len(ev.Audio), len(clip.Ulaw()))
			}
		case "error":
			t.Errorf("client saw a protocol error: %v", ev.Err)
		}
	}
	if !bytes.Equal(audio, clip.Ulaw()) {
		t.Errorf("received %d bytes of μ-law, want the clip's %d", len(audio), len(clip.Ulaw()))
	}
	if want := []string{"media", "media", "media", "mark", "played", "closed"}; !slices.Equal(kinds, want) {
		t.Errorf("client events %v, want %v", kinds, want)
	}
	last := evs[len(evs)-1]
	if last.CloseCode != websocket.CloseNormalClosure || last.CloseText != "done" {
		t.Errorf("closed with %d %q, want 1000 \"done\"", last.CloseCode, last.CloseText)
	}
	if recs := cl.Recordings(); len(recs) != 1 || recs[0].Mark != "welcome" || recs[0].Cleared {
		t.Errorf("recordings %+v", recs)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestBargeIn: a digit pressed while a prompt plays makes the flow Clear; Twilio (the client,
// playing in real time) sees "clear" and echoes the pending mark at once, which the leg reports
// as not played. A prompt played after the clear plays normally.
func TestBargeIn(t *testing.T) {
	long := toneClip(t, "ask_pin", 3*time.Second)
	short := toneClip(t, "invalid_input", 200*time.Millisecond)
	type result struct {
		marks []media.Event
		stats Stats
	}
	done := make(chan result, 1)
	srv := newServer(t, Config{}, func(ctx context.Context, leg media.Leg) {
		var res result
		defer func() { done <- res }()
		if ev := nextEvent(t, ctx, leg, 5*time.Second); ev.Type != media.EventStart {
			t.Errorf("first event %v", ev.Type)
			return
		}
		if err := leg.Play(long, "ask_pin"); err != nil {
			t.Errorf("Play: %v", err)
		}
		for len(res.marks) < 2 {
			ev := nextEvent(t, ctx, leg, 5*time.Second)
			switch ev.Type {
			case media.EventDTMF:
				if err := leg.Clear(); err != nil {
					t.Errorf("Clear: %v", err)
				}
				if err := leg.Play(short, "invalid_input"); err != nil {
					t.Errorf("Play: %v", err)
				}
			case media.EventMark:
				res.marks = append(res.marks, ev)
			default:
				t.Errorf("unexpected %v event", ev.Type)
				return
			}
		}
		res.stats = leg.(*Leg).Stats()
		_ = leg.Hangup("done")
		drain(leg)
	})

	cl, err := Dial(context.Background(), srv.wsURL(), CallParams{From: "+14155550100"},
		WithRealtimePlayback(true), WithRecording(true))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	began := time.Now()
	var kinds []string
	var played []ClientEvent
	pressed := false
	for ev := range cl.Events() {
		kinds = append(kinds, ev.Kind)
		switch ev.Kind {
		case "media":
			if !pressed {
				pressed = true
				if err := cl.SendDTMF('5'); err != nil {
					t.Fatal(err)
				}
			}
		case "played":
			played = append(played, ev)
		case "error":
			t.Errorf("client: %v", ev.Err)
		}
	}
	res := <-done
	if elapsed := time.Since(began); elapsed > 2500*time.Millisecond {
		t.Errorf("call took %s; the 3 s prompt should have been cut short", elapsed)
	}
	if len(res.marks) != 2 || res.marks[0].Mark != "ask_pin" || res.marks[0].Played ||
		res.marks[1].Mark != "invalid_input" || !res.marks[1].Played {
		t.Errorf("marks %+v, want ask_pin not played, then invalid_input played", res.marks)
	}
	if !slices.Contains(kinds, "clear") {
		t.Errorf("client never saw clear: %v", kinds)
	}
	if len(played) != 2 || !played[0].Cleared || played[1].Cleared {
		t.Errorf("client echoes %+v, want ask_pin cleared then invalid_input played", played)
	}
	if res.stats.Clears != 1 {
		t.Errorf("clears = %d, want 1", res.stats.Clears)
	}
	recs := cl.Recordings()
	if len(recs) != 2 || !recs[0].Cleared || recs[1].Cleared || !bytes.Equal(recs[1].Audio, short.Ulaw()) {
		t.Errorf("recordings: %d, want ask_pin (cleared) and invalid_input's full audio", len(recs))
	}
}

// TestStop: Twilio's "stop" ends the leg with ErrHangup and the socket closes with 1000.
func TestStop(t *testing.T) {
	done := make(chan []media.Event, 1)
	ready := make(chan struct{})
	srv := newServer(t, Config{}, func(ctx context.Context, leg media.Leg) {
		close(ready)
		evs := drain(leg)
		if ctx.Err() == nil {
			t.Errorf("serve context still live after the stream ended")
		}
		done <- evs
	})
	cl, err := Dial(context.Background(), srv.wsURL(), CallParams{})
	if err != nil {
		t.Fatal(err)
	}
	<-ready
	got := make(chan []ClientEvent, 1)
	go func() { got <- collect(t, cl, 5*time.Second) }()
	if err := cl.Stop(); err != nil {
		t.Fatal(err)
	}
	evs := <-done
	if len(evs) != 2 || evs[0].Type != media.EventStart || evs[1].Type != media.EventHangup ||
		!errors.Is(evs[1].Err, media.ErrHangup) || errors.Is(evs[1].Err, media.ErrProtocol) {
		t.Errorf("leg events %+v, want start then hangup(ErrHangup)", evs)
	}
	cevs := <-got
	last := cevs[len(cevs)-1]
	if last.Kind != "closed" || last.CloseCode != websocket.CloseNormalClosure {
		t.Errorf("client's last event %+v, want closed 1000", last)
	}
}

// TestSignature: with an auth token the upgrade needs a valid X-Twilio-Signature over the
// wss:// stream URL; anything else is 403 before the upgrade and the flow never runs.
func TestSignature(t *testing.T) {
	const token = "tw-auth-token"
	for _, tc := range []struct {
		name      string
		publicURL string
		token     string
		signedURL string
		wantOK    bool
	}{
		{name: "good", token: token, wantOK: true},
		{name: "wrong token", token: "other"},
		{name: "absent"},
		{name: "public url", publicURL: "https://cp.example.com", token: token, signedURL: "wss://cp.example.com/v1/twilio", wantOK: true},
		{name: "public url, signed for the dialled host", publicURL: "https://cp.example.com", token: token},
		{name: "signed with a query", token: token, signedURL: "?x=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, Config{AuthToken: token, PublicURL: tc.publicURL}, func(ctx context.Context, leg media.Leg) {
				drain(leg)
			})
			var opts []ClientOption
			if tc.signedURL != "" {
				u := tc.signedURL
				if strings.HasPrefix(u, "?") {
					u = StreamURL("", strings.TrimPrefix(srv.URL, "http://")) + u
				}
				opts = append(opts, WithSignedURL(u))
			}
			cl, err := Dial(context.Background(), srv.wsURL(), CallParams{AuthToken: tc.token}, opts...)
			if !tc.wantOK {
				if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "403") {
					t.Fatalf("Dial error %v, want ErrRejected with 403", err)
				}
				if n := srv.served(); n != 0 {
					t.Errorf("serve ran %d times for a rejected stream", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.Stop(); err != nil {
				t.Fatal(err)
			}
			collect(t, cl, 5*time.Second)
		})
	}
}

// TestSignatureBeforeUpgrade: a bad signature gets a plain HTTP 403, not a WebSocket.
func TestSignatureBeforeUpgrade(t *testing.T) {
	srv := newServer(t, Config{AuthToken: "secret"}, func(ctx context.Context, leg media.Leg) { drain(leg) })
	_, resp, err := websocket.DefaultDialer.Dial(srv.wsURL(), nil)
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("dial without signature: err %v, resp %v; want 403", err, resp)
	}
	if resp.Header.Get("Upgrade") != "" {
		t.Errorf("403 carries Upgrade header")
	}
}
