package asterisk

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
)

// TestScriptedCall runs calls over loopback: HTTP Basic, caller metadata from the query
// string, digits as events, caller audio, a prompt played and acknowledged by
// MEDIA_BUFFERING_COMPLETED, and the server hanging up with HANGUP.
func TestScriptedCall(t *testing.T) {
	s := newServer(t, Config{Username: "asterisk", Password: "s3cret"})
	cl := dial(t, s.wsURL(), DialOptions{Username: "asterisk", Password: "s3cret",
		ConnectionID: "e226e283-c90a-4ea9-9e37-389000b9ef47", ChannelID: "pbx1-1761245643.1",
		From: "+14155550100", To: "+18005550199", Verstat: "TN-Validation-Passed-A",
		Params: map[string]string{"request": "delete", "lang": "es-US", "ignored": "x"}})
	leg := s.nextLeg(t)
	ev := nextEvent(t, leg)
	if ev.Type != media.EventStart {
		t.Fatalf("first event %v", ev.Type)
	}
	st := ev.Start
	if st.CallID != "pbx1-1761245643.1" || st.StreamID != "e226e283-c90a-4ea9-9e37-389000b9ef47" || st.Transport != "asterisk" ||
		st.From != "+14155550100" || st.To != "+18005550199" || st.Verstat != "TN-Validation-Passed-A" ||
		st.Param("request") != "delete" || st.Param("lang") != "es-US" || st.Param("ignored") != "" {
		t.Fatalf("start %+v", *st)
	}
	if info := leg.Info(); info.Transport != "asterisk" || !info.NativeMarks {
		t.Fatalf("info %+v", info)
	}
	if f := leg.(*Leg).Format(); f != "ulaw" {
		t.Fatalf("format %q", f)
	}

	if err := cl.SendAudio(make([]int16, 3*media.FrameSamples)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []byte("7*#") {
		if err := cl.SendDTMF(d); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []byte("7*#") {
		if ev := nextEvent(t, leg); ev.Type != media.EventDTMF || ev.Digit != d || ev.Source != media.SourceEvent {
			t.Fatalf("got %+v, want digit %c", ev, d)
		}
	}
	if n := leg.(*Leg).Stats().FramesIn; n != 3 {
		t.Fatalf("frames in = %d, want 3", n)
	}

	welcome := toneClip(t, "welcome", 1500*time.Millisecond)
	if err := leg.Play(welcome, "welcome"); err != nil {
		t.Fatal(err)
	}
	mark, heard := nextSimKind(t, cl)
	if mark.Kind != media.SimMark || mark.Mark != "1" {
		t.Fatalf("got %+v, want the prompt's STOP_MEDIA_BUFFERING id", mark)
	}
	want := media.DecodeUlaw(make([]int16, len(welcome.Ulaw())), welcome.Ulaw())
	if !slices.Equal(heard, want) {
		t.Fatalf("heard %d samples that differ from the prompt's %d", len(heard), len(want))
	}
	if ev := nextEvent(t, leg); ev.Type != media.EventMark || ev.Mark != "welcome" || !ev.Played {
		t.Fatalf("got %+v, want mark welcome played", ev)
	}
	if s := leg.(*Leg).Stats(); s.MessagesOut != 2 || s.BytesOut != uint64(len(welcome.Ulaw())) || s.Marks != 1 || s.Prompts != 1 {
		t.Fatalf("stats %+v", s)
	}

	if err := leg.Hangup("verified"); err != nil {
		t.Fatal(err)
	}
	closed, _ := nextSimKind(t, cl)
	if closed.Kind != media.SimClosed || closed.Code != websocket.CloseNormalClosure || closed.Reason != "verified" {
		t.Fatalf("client saw %+v, want close 1000 verified", closed)
	}
	if ev := drainLeg(t, leg); ev.Type != media.EventHangup || !errors.Is(ev.Err, media.ErrLegClosed) {
		t.Fatalf("last event %+v", ev)
	}
	if err := leg.Clear(); !errors.Is(err, media.ErrLegClosed) {
		t.Fatalf("Clear after hangup: %v", err)
	}
}

// TestBargeIn plays to a realtime simulated Asterisk using JSON control messages and slin16:
// metadata from channel variables, prompts cut by Clear (FLUSH_MEDIA, pending marks reported
// not played), a later prompt acknowledged on the playback clock, and the caller hanging up.
func TestBargeIn(t *testing.T) {
	s := newServer(t, Config{})
	cl := dial(t, s.wsURL(), DialOptions{JSON: true, Format: "slin16", Realtime: true, From: "+10000000000",
		Vars: map[string]string{"CALLPROOF_FROM": "+14155550100", "CALLPROOF_ACCOUNT": "40001234", "OTHER": "x"}})
	leg := s.nextLeg(t)
	ev := nextEvent(t, leg)
	if ev.Start.From != "+14155550100" || ev.Start.Param("account") != "40001234" || ev.Start.CallID == ev.Start.StreamID {
		t.Fatalf("start %+v: want metadata from channel variables and the channel id as call id", *ev.Start)
	}
	if f := leg.(*Leg).Format(); f != "slin16" {
		t.Fatalf("format %q", f)
	}
	if err := cl.SendAudio(tone(8000, 1000, 8*media.FrameSamples, 8000)); err != nil {
		t.Fatal(err)
	}

	long, short := toneClip(t, "ask_dob", 3*time.Second), toneClip(t, "queued", 500*time.Millisecond)
	if err := leg.Play(long, "ask_dob"); err != nil {
		t.Fatal(err)
	}
	if err := leg.Play(short, "queued"); err != nil {
		t.Fatal(err)
	}
	var heard []int16
	for len(heard) < 3*media.SampleRate+media.SampleRate/2 { // both prompts arrive at once
		ev := nextSim(t, cl)
		if ev.Kind != media.SimAudio {
			t.Fatalf("got %v before the audio", ev.Kind)
		}
		heard = append(heard, ev.Audio...)
	}
	// The slin16 round trip (up on the server, down in the client) keeps the tone.
	pcm := long.PCM()
	var sig, noise float64
	for i := 2000; i < 20000; i++ {
		e := float64(heard[i+halfBandDelay/2]) - float64(pcm[i])
		sig += float64(pcm[i]) * float64(pcm[i])
		noise += e * e
	}
	if snr := 10 * math.Log10(sig/noise); snr < 40 {
		t.Fatalf("slin16 prompt SNR %.1f dB", snr)
	}
	select {
	case ev := <-leg.Events():
		t.Fatalf("got %+v while the prompts are still playing", ev)
	case <-time.After(100 * time.Millisecond):
	}

	if err := leg.Clear(); err != nil {
		t.Fatal(err)
	}
	if ev := nextSim(t, cl); ev.Kind != media.SimClear {
		t.Fatalf("client got %v, want the flush", ev.Kind)
	}
	for _, m := range []string{"ask_dob", "queued"} {
		if ev := nextEvent(t, leg); ev.Type != media.EventMark || ev.Mark != m || ev.Played {
			t.Fatalf("got %+v, want mark %s not played", ev, m)
		}
	}
	verified := toneClip(t, "verified", 200*time.Millisecond)
	began := time.Now()
	if err := leg.Play(verified, "verified"); err != nil {
		t.Fatal(err)
	}
	if ev, _ := nextSimKind(t, cl); ev.Kind != media.SimMark || ev.Mark != "3" {
		t.Fatalf("client got %+v, want prompt 3 played", ev)
	}
	if ev := nextEvent(t, leg); ev.Type != media.EventMark || ev.Mark != "verified" || !ev.Played {
		t.Fatalf("got %+v, want mark verified played", ev)
	}
	if d := time.Since(began); d < 200*time.Millisecond {
		t.Fatalf("mark after %s, before the prompt could have played", d)
	}
	if s := leg.(*Leg).Stats(); s.Clears != 1 || s.Drained < 1 || s.FramesIn != 8 {
		t.Fatalf("stats %+v", s)
	}

	if err := cl.Hangup(); err != nil {
		t.Fatal(err)
	}
	if ev := drainLeg(t, leg); ev.Type != media.EventHangup || !errors.Is(ev.Err, media.ErrHangup) {
		t.Fatalf("last event %+v, want the caller's hangup", ev)
	}
	if ev, _ := nextSimKind(t, cl); ev.Kind != media.SimClosed || ev.Code != websocket.CloseNormalClosure {
		t.Fatalf("client saw %+v", ev)
	}
}

// TestFlowControl checks that MEDIA_XOFF stops prompt audio until MEDIA_XON, and that the leg
// never runs more than 10 s ahead of real time.
func TestFlowControl(t *testing.T) {
	s := newServer(t, Config{})
	cl := dial(t, s.wsURL(), DialOptions{})
	leg := s.nextLeg(t)
	nextEvent(t, leg)
	if err := cl.SendControl("MEDIA_XOFF"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(wait); leg.(*Leg).Stats().XOFFs == 0; {
		if time.Now().After(deadline) {
			t.Fatal("XOFF not seen")
		}
		time.Sleep(time.Millisecond)
	}
	if err := leg.Play(toneClip(t, "p", time.Second), "p"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-cl.Events():
		t.Fatalf("got %v while XOFF", ev.Kind)
	case <-time.After(150 * time.Millisecond):
	}
	if err := cl.SendControl("MEDIA_XON"); err != nil {
		t.Fatal(err)
	}
	if ev, _ := nextSimKind(t, cl); ev.Kind != media.SimMark {
		t.Fatalf("got %v after XON, want the prompt then its mark", ev.Kind)
	}
	nextEvent(t, leg)
	_ = leg.Hangup("done")
	drainLeg(t, leg)

	// 12 s of prompt: 11 one-second messages go at once, the 12th waits for the window.
	cl = dial(t, s.wsURL(), DialOptions{})
	leg = s.nextLeg(t)
	nextEvent(t, leg)
	began := time.Now()
	if err := leg.Play(toneClip(t, "long", 12*time.Second), "long"); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		ev := nextSim(t, cl)
		if ev.Kind != media.SimAudio {
			t.Fatalf("message %d: %v", i, ev.Kind)
		}
		d := time.Since(began)
		if i < 11 && d > 500*time.Millisecond || i == 11 && d < 700*time.Millisecond {
			t.Fatalf("message %d after %s", i, d)
		}
	}
	_ = leg.Hangup("done")
	drainLeg(t, leg)
}

// TestEarlyMedia checks that audio arriving before MEDIA_START, as Asterisk sometimes sends it
// (asterisk issue #1712), is dropped rather than ending the call.
func TestEarlyMedia(t *testing.T) {
	s := newServer(t, Config{})
	cl := dial(t, s.wsURL(), DialOptions{EarlyFrames: 5, Format: "alaw"})
	leg := s.nextLeg(t)
	if ev := nextEvent(t, leg); ev.Type != media.EventStart {
		t.Fatalf("first event %v", ev.Type)
	}
	if err := cl.SendAudio(make([]int16, media.FrameSamples)); err != nil {
		t.Fatal(err)
	}
	_ = cl.Hangup()
	drainLeg(t, leg)
	if s := leg.(*Leg).Stats(); s.Early != 5 || s.FramesIn != 1 {
		t.Fatalf("stats %+v, want 5 early frames dropped and 1 taken", s)
	}
}
