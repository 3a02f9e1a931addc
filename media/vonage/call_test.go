package vonage

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

const token = "0123456789abcdefXYZ"

// TestCall runs a scripted call at 8 and 16 kHz: metadata mapped to Start, digits, a prompt
// played out and acknowledged, barge-in, and each side hanging up.
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
	srv := wsaudiotest.NewServer(t, NewHandler(Config{Token: token}, serve, zaptest.NewLogger(t)))
	ctx := context.Background()
	cl, err := Dial(ctx, srv.WS(StreamPath+"/"+token), CallParams{
		CallID: "CALL-1", From: "+14155550100", To: "+18005550199", Verstat: "TN-Validation-Passed-A",
		Params: map[string]string{"request": "delete", "lang": "es-US", "account": "40001234"}, Rate: rate,
	}, WithRealtime(true))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	leg := wsaudiotest.Leg(t, legs)
	if _, ok := leg.(*Leg); !ok {
		t.Fatalf("leg is a %T, want *Leg", leg)
	}

	ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait)
	want := media.Start{CallID: "CALL-1", Transport: "vonage", From: "+14155550100", To: "+18005550199",
		Verstat: "TN-Validation-Passed-A", Params: map[string]string{"request": "delete", "lang": "es-US", "account": "40001234"}}
	if ev.Type != media.EventStart || !sameStart(ev.Start, &want) {
		t.Fatalf("first event %v %+v, want start %+v", ev.Type, ev.Start, want)
	}
	if info := leg.Info(); info.Transport != "vonage" || !info.NativeMarks {
		t.Errorf("Info() = %+v", info)
	}

	// Caller audio flows (whole and part frames), then two digits.
	if err := cl.SendAudio(make([]int16, 250)); err != nil {
		t.Fatal(err)
	}
	if err := cl.SendAudio(make([]int16, 70)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []byte("1#") {
		if err := cl.SendDTMF(d); err != nil {
			t.Fatal(err)
		}
		ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait)
		if ev.Type != media.EventDTMF || ev.Digit != d || ev.Source != media.SourceEvent {
			t.Fatalf("got %v %q from %v, want digit %q from the platform", ev.Type, ev.Digit, ev.Source, d)
		}
	}
	if err := cl.SendDTMF('x'); !errors.Is(err, ErrDigit) {
		t.Errorf("SendDTMF('x') = %v, want ErrDigit", err)
	}

	// A short prompt plays out: the client receives it sample for sample (at 16 kHz as the
	// even samples of UpClip) and acknowledges the notify once it has played.
	welcome := wsaudiotest.Tone(t, "welcome", 440, 200*time.Millisecond)
	if err := leg.Play(welcome, "welcome"); err != nil {
		t.Fatal(err)
	}
	got := wsaudiotest.Audio(t, cl.Events(), len(welcome.PCM()), wsaudiotest.Wait)
	if !slices.Equal(got, welcome.PCM()) {
		t.Error("the client did not receive the prompt's samples unchanged")
	}
	if ev := wsaudiotest.NextSim(t, cl.Events(), false, wsaudiotest.Wait); ev.Kind != media.SimMark || ev.Mark != "welcome" {
		t.Fatalf("client got %+v, want the welcome mark", ev)
	}
	if ev := wsaudiotest.NextSim(t, cl.Events(), false, wsaudiotest.Wait); ev.Kind != media.SimPlayed || ev.Mark != "welcome" {
		t.Fatalf("client got %+v, want welcome played", ev)
	}
	if ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait); ev.Type != media.EventMark || ev.Mark != "welcome" || !ev.Played {
		t.Fatalf("leg got %+v, want mark welcome played", ev)
	}

	// Barge-in: a long prompt is cleared before it has played; its mark comes back unplayed.
	long := wsaudiotest.Tone(t, "ask_dob", 300, wsaudiotest.Long)
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
		if err := leg.Hangup("verified"); err != nil {
			t.Fatal(err)
		}
		ev := wsaudiotest.NextSim(t, cl.Events(), true, wsaudiotest.Wait)
		if ev.Kind != media.SimClosed || ev.Code != websocket.CloseNormalClosure || ev.Reason != "verified" {
			t.Fatalf("client got %+v, want closed 1000 verified", ev)
		}
		if ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait); ev.Type != media.EventHangup || !errors.Is(ev.Err, media.ErrLegClosed) {
			t.Fatalf("leg got %+v, want hangup ErrLegClosed", ev)
		}
	case "caller":
		if err := cl.Close(); err != nil {
			t.Fatal(err)
		}
		if ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait); ev.Type != media.EventHangup || !errors.Is(ev.Err, media.ErrHangup) {
			t.Fatalf("leg got %+v, want hangup ErrHangup", ev)
		}
		if err := leg.Play(welcome, "late"); !errors.Is(err, media.ErrLegClosed) {
			t.Errorf("Play after hangup = %v, want ErrLegClosed", err)
		}
	}
	if err := cl.Err(); err != nil {
		t.Errorf("server broke the protocol: %v", err)
	}
	if _, ok := <-leg.Events(); ok {
		t.Error("leg events not closed after hangup")
	}
}

func sameStart(a, b *media.Start) bool {
	if a == nil {
		return false
	}
	if a.CallID != b.CallID || a.Transport != b.Transport || a.From != b.From || a.To != b.To || a.Verstat != b.Verstat || len(a.Params) != len(b.Params) {
		return false
	}
	for k, v := range b.Params {
		if a.Params[k] != v {
			return false
		}
	}
	return true
}

// TestAuth: the token is accepted in the path, the query and a Bearer header; anything else
// is refused with 401 before the upgrade.
func TestAuth(t *testing.T) {
	serve, legs := wsaudiotest.Legs()
	srv := wsaudiotest.NewServer(t, NewHandler(Config{Token: token}, serve, zaptest.NewLogger(t)))
	for _, tc := range []struct {
		name, path, bearer string
		ok                 bool
	}{
		{"path", StreamPath + "/" + token, "", true},
		{"query", StreamPath + "?token=" + token, "", true},
		{"bearer", StreamPath, token, true},
		{"none", StreamPath, "", false},
		{"wrong path", StreamPath + "/" + token + "x", "", false},
		{"wrong bearer", StreamPath, "nope", false},
		{"token in another query parameter", StreamPath + "?secret=" + token, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := Dial(context.Background(), srv.WS(tc.path), CallParams{Token: tc.bearer})
			if !tc.ok {
				if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "401") {
					t.Fatalf("Dial = %v, want ErrRejected with HTTP 401", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			leg := wsaudiotest.Leg(t, legs)
			_ = leg.Hangup("ok")
			if ev := wsaudiotest.NextSim(t, cl.Events(), true, wsaudiotest.Wait); ev.Kind != media.SimClosed || ev.Code != 1000 {
				t.Fatalf("client got %+v, want closed 1000", ev)
			}
		})
	}
}
