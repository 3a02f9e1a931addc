package vonage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsaudio/wsaudiotest"
)

const connected8k = `{"event":"websocket:connected","content-type":"audio/l16;rate=8000","uuid":"C1","from":"+14155550100"}`

// TestBadInput: each protocol violation ends that call with its close code and a clear reason,
// the flow (when the call had started) sees a hangup wrapping media.ErrProtocol, and a good
// call afterwards works as usual.
func TestBadInput(t *testing.T) {
	ended := make(chan error, 1)
	srv := wsaudiotest.NewServer(t, NewHandler(Config{ReadLimit: 4096, StartTimeout: wsaudiotest.Wait},
		func(ctx context.Context, leg media.Leg) {
			evs := wsaudiotest.Drain(leg)
			ended <- evs[len(evs)-1].Err
		}, zaptest.NewLogger(t)))
	text, bin := wsaudiotest.Text, wsaudiotest.Binary
	started := func(fs ...wsaudiotest.Frame) []wsaudiotest.Frame {
		return append([]wsaudiotest.Frame{text(connected8k)}, fs...)
	}
	many := `{"event":"websocket:connected","content-type":"audio/l16;rate=8000"`
	for i := range 40 {
		many += fmt.Sprintf(`,"h%d":"v"`, i)
	}
	many += "}"
	for _, tc := range []struct {
		name    string
		frames  []wsaudiotest.Frame
		code    int
		reason  string
		started bool
	}{
		{"binary before metadata", []wsaudiotest.Frame{bin(make([]byte, 320))}, 1008, "binary audio before the metadata", false},
		{"metadata not JSON", []wsaudiotest.Frame{text(`websocket:connected`)}, 1007, "not a JSON object", false},
		{"metadata truncated", []wsaudiotest.Frame{text(`{"event":"websocket:connected",`)}, 1007, "bad JSON", false},
		{"metadata not UTF-8", []wsaudiotest.Frame{text("{\"event\":\"\xff\"}")}, 1007, "not UTF-8", false},
		{"first message another event", []wsaudiotest.Frame{text(`{"event":"websocket:dtmf","digit":"1"}`)}, 1008, "must be websocket:connected", false},
		{"no content-type", []wsaudiotest.Frame{text(`{"event":"websocket:connected"}`)}, 1007, "no content-type", false},
		{"not L16", []wsaudiotest.Frame{text(`{"event":"websocket:connected","content-type":"audio/pcmu;rate=8000"}`)}, 1008, "unsupported content-type", false},
		{"24 kHz", []wsaudiotest.Frame{text(`{"event":"websocket:connected","content-type":"audio/l16;rate=24000"}`)}, 1008, "sample rate 24000", false},
		{"rate not a number", []wsaudiotest.Frame{text(`{"event":"websocket:connected","content-type":"audio/l16;rate=fast"}`)}, 1007, "rate is not a number", false},
		{"bad call uuid", []wsaudiotest.Frame{text(`{"event":"websocket:connected","content-type":"audio/l16;rate=8000","uuid":"a b"}`)}, 1007, "call uuid", false},
		{"from not a string", []wsaudiotest.Frame{text(`{"event":"websocket:connected","content-type":"audio/l16;rate=8000","from":{"n":1}}`)}, 1007, `"from" must be a string`, false},
		{"too many headers", []wsaudiotest.Frame{text(many)}, 1008, "more than 32 stream parameters", false},
		{"frame too short", started(bin(make([]byte, 100))), 1007, "want exactly 320", true},
		{"frame too long", started(bin(make([]byte, 640))), 1007, "want exactly 320", true},
		{"odd length", started(bin(make([]byte, 321))), 1007, "samples are 2 bytes", true},
		{"unknown event", started(text(`{"event":"websocket:bogus"}`)), 1008, `unknown event "websocket:bogus"`, true},
		{"no event", started(text(`{"digit":"1"}`)), 1007, "no event", true},
		{"second connected", started(text(connected8k)), 1008, "second websocket:connected", true},
		{"bad digit", started(text(`{"event":"websocket:dtmf","digit":"x"}`)), 1007, "digit is not one of", true},
		{"two digits", started(text(`{"event":"websocket:dtmf","digit":"12"}`)), 1007, "digit is not one of", true},
		{"digit missing", started(text(`{"event":"websocket:dtmf","duration":260}`)), 1007, "digit is not one of", true},
		{"notify never sent", started(text(`{"event":"websocket:notify","payload":{"mark":"x","seq":5}}`)), 1008, "mark 5, which was never sent", true},
		{"notify not ours", started(text(`{"event":"websocket:notify","payload":{"id":"x"}}`)), 1007, "not one we sent", true},
		{"trailing data", started(text(`{"event":"websocket:cleared"} {}`)), 1007, "bad JSON", true},
		{"oversize message", started(text(`{"event":"websocket:cleared","x":"` + strings.Repeat("a", 5000) + `"}`)), 1009, "larger than 4096 bytes", true},
		{"huge message", started(text(`{"event":"websocket:cleared","x":"` + strings.Repeat("a", 50000) + `"}`)), 1009, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, reason := wsaudiotest.RawCall(t, srv.WS(StreamPath), "", nil, tc.frames)
			if code != tc.code || !strings.Contains(reason, tc.reason) {
				t.Errorf("closed with %d %q, want %d containing %q", code, reason, tc.code, tc.reason)
			}
			if !tc.started {
				return
			}
			select {
			case err := <-ended:
				if !errors.Is(err, media.ErrProtocol) {
					t.Errorf("flow saw hangup %v, want media.ErrProtocol", err)
				}
			case <-time.After(wsaudiotest.Wait):
				t.Fatal("flow never saw the hangup")
			}
		})
	}

	// A good call still works.
	cl, err := Dial(context.Background(), srv.WS(StreamPath), CallParams{From: "+14155550100"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SendDTMF('5'); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, media.ErrHangup) {
			t.Errorf("good call ended with %v, want ErrHangup", err)
		}
	case <-time.After(wsaudiotest.Wait):
		t.Fatal("good call never ended")
	}
}

// TestStartTimeout: a stream that sends no metadata is closed with 1008 after StartTimeout.
func TestStartTimeout(t *testing.T) {
	srv := wsaudiotest.NewServer(t, NewHandler(Config{StartTimeout: 200 * time.Millisecond}, nil, zaptest.NewLogger(t)))
	code, reason := wsaudiotest.RawCall(t, srv.WS(StreamPath), "", nil, nil)
	if code != 1008 || reason != "no metadata message within 200ms" {
		t.Errorf("closed with %d %q", code, reason)
	}
}
