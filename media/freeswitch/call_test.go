package freeswitch

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/dtmf"
	"github.com/callproof/callproof/media/wsaudio/wsaudiotest"
)

func detector(rate int) media.ToneDetector { return dtmf.New(dtmf.Config{SampleRate: rate}) }

// TestCall runs a scripted call at 8 and 16 kHz: metadata mapped to Start, in-band digits
// found by the detector (FreeSWITCH forwards none), a prompt played as playAudio and its mark
// emulated, barge-in with killAudio, and each side hanging up.
func TestCall(t *testing.T) {
	for _, rate := range []int{8000, 16000} {
		for _, hangupBy := range []string{"server", "caller"} {
			t.Run(strconv.Itoa(rate)+"/"+hangupBy, func(t *testing.T) {
				t.Parallel()
				testCall(t, rate, hangupBy)
			})
		}
	}
}

func testCall(t *testing.T, rate int, hangupBy string) {
	serve, legs := wsaudiotest.Legs()
	cfg := Config{Username: "fs", Password: "s3cret", DTMF: media.DTMFInband, NewDetector: detector}
	srv := wsaudiotest.NewServer(t, NewHandler(cfg, serve, zaptest.NewLogger(t)))
	welcome := wsaudiotest.Tone(t, "welcome", 440, 200*time.Millisecond)
	long := wsaudiotest.Tone(t, "ask_zip", 300, wsaudiotest.Long)
	cl, err := Dial(context.Background(), srv.WS(StreamPath), CallParams{
		CallID: "7dd5e34e-5db4-4edb-a166-757e5d29b941", From: "+14155550100", To: "+18005550199", Verstat: "TN-Validation-Passed-C",
		Params: map[string]string{"request": "correct", "lang": "es-US"}, Rate: rate, Username: "fs", Password: "s3cret",
	}, WithRealtime(true), WithPrompts(media.NewPromptIndex([]*media.Clip{welcome, long})))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	leg := wsaudiotest.Leg(t, legs)
	if _, ok := leg.(*Leg); !ok {
		t.Fatalf("leg is a %T, want *Leg", leg)
	}

	ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait)
	st := ev.Start
	if ev.Type != media.EventStart || st.CallID != "7dd5e34e-5db4-4edb-a166-757e5d29b941" || st.Transport != "freeswitch" ||
		st.From != "+14155550100" || st.To != "+18005550199" || st.Verstat != "TN-Validation-Passed-C" ||
		st.Param("request") != "correct" || st.Param("lang") != "es-US" || len(st.Params) != 2 {
		t.Fatalf("first event %v %+v", ev.Type, st)
	}
	if info := leg.Info(); info.Transport != "freeswitch" || info.NativeMarks {
		t.Errorf("Info() = %+v", info)
	}

	if err := cl.SendDTMF('1'); !errors.Is(err, ErrNoDigitEvents) {
		t.Errorf("SendDTMF = %v, want ErrNoDigitEvents", err)
	}
	// Key presses as tones in the audio, sent in odd-sized pieces.
	tones := dtmf.Tones("12#", dtmf.GenOptions{Lead: 60 * time.Millisecond})
	for off := 0; off < len(tones); off += 97 {
		if err := cl.SendAudio(tones[off:min(off+97, len(tones))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.SendAudio(make([]int16, 800)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []byte("12#") {
		if ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait); ev.Type != media.EventDTMF || ev.Digit != d || ev.Source != media.SourceInband {
			t.Fatalf("got %v %q from %v, want in-band digit %q", ev.Type, ev.Digit, ev.Source, d)
		}
	}

	began := time.Now()
	if err := leg.Play(welcome, "welcome"); err != nil {
		t.Fatal(err)
	}
	if got := wsaudiotest.Audio(t, cl.Events(), len(welcome.PCM()), wsaudiotest.Wait); !slices.Equal(got, welcome.PCM()) {
		t.Error("the client did not receive the prompt's samples unchanged")
	}
	if ev := wsaudiotest.NextSim(t, cl.Events(), false, wsaudiotest.Wait); ev.Kind != media.SimMark || ev.Mark != "welcome" {
		t.Fatalf("client got %+v, want the recognised welcome prompt", ev)
	}
	if ev := wsaudiotest.NextSim(t, cl.Events(), false, wsaudiotest.Wait); ev.Kind != media.SimPlayed || ev.Mark != "welcome" {
		t.Fatalf("client got %+v, want welcome played", ev)
	}
	if ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait); ev.Type != media.EventMark || ev.Mark != "welcome" || !ev.Played {
		t.Fatalf("leg got %+v, want mark welcome played", ev)
	}
	if el := time.Since(began); el < 180*time.Millisecond {
		t.Errorf("emulated mark after %s, before the 200 ms prompt could play", el)
	}

	if err := leg.Play(long, "ask_zip"); err != nil {
		t.Fatal(err)
	}
	wsaudiotest.Audio(t, cl.Events(), len(long.PCM()), wsaudiotest.Wait)
	if ev := wsaudiotest.NextSim(t, cl.Events(), false, wsaudiotest.Wait); ev.Kind != media.SimMark || ev.Mark != "ask_zip" {
		t.Fatalf("client got %+v, want the recognised ask_zip prompt", ev)
	}
	if err := leg.Clear(); err != nil {
		t.Fatal(err)
	}
	if ev := wsaudiotest.NextSim(t, cl.Events(), true, wsaudiotest.Wait); ev.Kind != media.SimClear {
		t.Fatalf("client got %+v, want clear", ev)
	}
	if ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait); ev.Type != media.EventMark || ev.Mark != "ask_zip" || ev.Played {
		t.Fatalf("leg got %+v, want mark ask_zip not played", ev)
	}

	switch hangupBy {
	case "server":
		_ = leg.Hangup("verified")
		ev := wsaudiotest.NextSim(t, cl.Events(), true, wsaudiotest.Wait)
		if ev.Kind != media.SimClosed || ev.Code != websocket.CloseNormalClosure || ev.Reason != "verified" {
			t.Fatalf("client got %+v, want closed 1000 verified", ev)
		}
	case "caller":
		_ = cl.Close()
		if ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait); ev.Type != media.EventHangup || !errors.Is(ev.Err, media.ErrHangup) {
			t.Fatalf("leg got %+v, want hangup ErrHangup", ev)
		}
	}
	if err := cl.Err(); err != nil {
		t.Errorf("server broke the protocol: %v", err)
	}
}

// TestLongPrompt: a prompt longer than 20 s goes out as several playAudio messages.
func TestLongPrompt(t *testing.T) {
	clip := wsaudiotest.Tone(t, "declaration", 440, 45*time.Second)
	w := wire(clip, 8000)
	if len(w.Msgs) != 3 || w.Msgs[0].Dur != 20*time.Second || w.Msgs[2].Dur != 5*time.Second {
		t.Fatalf("45 s prompt as %d messages", len(w.Msgs))
	}
	for _, m := range w.Msgs {
		if !m.Text || len(m.Data) > 650_000 || !strings.HasPrefix(string(m.Data), `{"type":"playAudio","data":{"audioContentType":"raw","sampleRate":8000,"audioContent":"`) {
			t.Fatalf("message of %d bytes: %.80s", len(m.Data), m.Data)
		}
	}
	if wire(clip, 16000) != w {
		t.Error("wire form not cached per clip")
	}
}

func TestAuthAndSubprotocol(t *testing.T) {
	serve, legs := wsaudiotest.Legs()
	srv := wsaudiotest.NewServer(t, NewHandler(Config{Username: "fs", Password: "pw", Subprotocol: "audio.jambonz.org"}, serve, zaptest.NewLogger(t)))
	for _, p := range []CallParams{
		{Username: "fs", Password: "nope", Subprotocol: "audio.jambonz.org"},
		{Subprotocol: "audio.jambonz.org"},
	} {
		if _, err := Dial(context.Background(), srv.WS(StreamPath), p); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "401") {
			t.Errorf("Dial = %v, want ErrRejected with 401", err)
		}
	}
	if _, err := Dial(context.Background(), srv.WS(StreamPath), CallParams{Username: "fs", Password: "pw"}); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "400") {
		t.Errorf("Dial with audio.drachtio.org = %v, want ErrRejected with 400", err)
	}
	cl, err := Dial(context.Background(), srv.WS(StreamPath), CallParams{Username: "fs", Password: "pw", Subprotocol: "audio.jambonz.org"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	leg := wsaudiotest.Leg(t, legs)
	_ = leg.Hangup("ok")
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{DTMF: media.DTMFEvents},
		{DTMF: media.DTMFInband},
		{Username: "u"},
		{Subprotocol: "audio drachtio"},
		{SampleRate: 24000},
		{ReadLimit: 10},
	} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrConfig", c, err)
		}
	}
	if err := (Config{DTMF: media.DTMFInband, NewDetector: detector, SampleRate: 16000}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
