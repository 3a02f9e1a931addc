package jambonz

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
	"github.com/callproof/callproof/media/wsaudio/wsaudiotest"
)

// TestCall runs a scripted call at 8 and 16 kHz: metadata mapped to Start, digits, a prompt
// played out (its mark emulated from the playback clock) and recognised by the client,
// barge-in, and each side hanging up.
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
	cfg := Config{Username: "jz", Password: "s3cret"}
	srv := wsaudiotest.NewServer(t, NewHandler(cfg, serve, zaptest.NewLogger(t)))
	welcome := wsaudiotest.Tone(t, "welcome", 440, 200*time.Millisecond)
	long := wsaudiotest.Tone(t, "ask_dob", 300, wsaudiotest.Long)
	cl, err := Dial(context.Background(), srv.WS(StreamPath), CallParams{
		CallID: "b5c0-41", From: "+14155550100", To: "+18005550199",
		Params:   map[string]string{"request": "know_specific", "lang": "en-US", "account": "40001234"},
		Rate:     rate,
		Username: "jz", Password: "s3cret",
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
	if ev.Type != media.EventStart {
		t.Fatalf("first event %v", ev.Type)
	}
	st := ev.Start
	if st.CallID != "b5c0-41" || st.Transport != "jambonz" || st.From != "+14155550100" || st.To != "+18005550199" ||
		st.Param("request") != "know_specific" || st.Param("lang") != "en-US" || st.Param("account") != "40001234" || len(st.Params) != 3 {
		t.Fatalf("start %+v", st)
	}
	if info := leg.Info(); info.Transport != "jambonz" || info.NativeMarks {
		t.Errorf("Info() = %+v, want jambonz with emulated marks", info)
	}

	if err := cl.SendAudio(make([]int16, 400)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []byte("4*") {
		if err := cl.SendDTMF(d); err != nil {
			t.Fatal(err)
		}
		if ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait); ev.Type != media.EventDTMF || ev.Digit != d || ev.Source != media.SourceEvent {
			t.Fatalf("got %+v, want digit %q", ev, d)
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

	if err := leg.Play(long, "ask_dob"); err != nil {
		t.Fatal(err)
	}
	wsaudiotest.Audio(t, cl.Events(), 2*media.FrameSamples, wsaudiotest.Wait)
	if err := leg.Clear(); err != nil {
		t.Fatal(err)
	}
	if ev := wsaudiotest.NextSim(t, cl.Events(), true, wsaudiotest.Wait); ev.Kind != media.SimClear {
		t.Fatalf("client got %+v, want clear", ev)
	}
	if ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait); ev.Type != media.EventMark || ev.Mark != "ask_dob" || ev.Played {
		t.Fatalf("leg got %+v, want mark ask_dob not played", ev)
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

// TestAuthAndSubprotocol: wrong credentials get 401; a client that does not offer
// audio.jambonz.org gets 400.
func TestAuthAndSubprotocol(t *testing.T) {
	serve, _ := wsaudiotest.Legs()
	srv := wsaudiotest.NewServer(t, NewHandler(Config{Username: "jz", Password: "s3cret"}, serve, zaptest.NewLogger(t)))
	for _, p := range []CallParams{{}, {Username: "jz", Password: "wrong"}, {Username: "other", Password: "s3cret"}} {
		if _, err := Dial(context.Background(), srv.WS(StreamPath), p); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "401") {
			t.Errorf("Dial with %q/%q = %v, want ErrRejected with 401", p.Username, p.Password, err)
		}
	}
	if code, _ := wsaudiotest.RawCall(t, srv.WS(StreamPath), "", basic("jz", "s3cret"), nil); code != -400 {
		t.Errorf("no subprotocol: %d, want HTTP 400", code)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Username: "jz"},
		{Username: "a:b", Password: "x"},
		{ReadLimit: 100},
		{MaxLead: time.Minute},
		{MaxLead: time.Millisecond},
		{DTMF: media.DTMFInband},
		{DTMF: 9},
	} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrConfig", c, err)
		}
	}
	if err := (Config{Username: "jz", Password: "x", MaxLead: 2 * time.Second}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
