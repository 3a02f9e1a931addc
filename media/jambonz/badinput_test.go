package jambonz

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsaudio/wsaudiotest"
)

const meta8k = `{"callSid":"CS1","from":"+14155550100","to":"+18005550199","direction":"inbound","sampleRate":8000,"mixType":"mono"}`

func basic(user, pass string) http.Header {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, pass)
	return r.Header
}

// TestBadInput: each protocol violation ends that call with its close code and a clear
// reason, the flow (when the call had started) sees a hangup wrapping media.ErrProtocol, and a
// good call afterwards works.
func TestBadInput(t *testing.T) {
	ended := make(chan error, 1)
	srv := wsaudiotest.NewServer(t, NewHandler(Config{ReadLimit: 4096, StartTimeout: wsaudiotest.Wait},
		func(ctx context.Context, leg media.Leg) {
			evs := wsaudiotest.Drain(leg)
			ended <- evs[len(evs)-1].Err
		}, zaptest.NewLogger(t)))
	text, bin := wsaudiotest.Text, wsaudiotest.Binary
	started := func(fs ...wsaudiotest.Frame) []wsaudiotest.Frame {
		return append([]wsaudiotest.Frame{text(meta8k)}, fs...)
	}
	meta := func(old, new string) []wsaudiotest.Frame {
		return []wsaudiotest.Frame{text(strings.Replace(meta8k, old, new, 1))}
	}
	for _, tc := range []struct {
		name    string
		frames  []wsaudiotest.Frame
		code    int
		reason  string
		started bool
	}{
		{"binary before metadata", []wsaudiotest.Frame{bin(make([]byte, 320))}, 1008, "binary audio before the metadata", false},
		{"metadata not JSON", []wsaudiotest.Frame{text(`hello`)}, 1007, "not a JSON object", false},
		{"metadata an array", []wsaudiotest.Frame{text(`[1]`)}, 1007, "not a JSON object", false},
		{"no callSid", meta(`"callSid":"CS1",`, ""), 1007, "no callSid", false},
		{"bad callSid", meta(`"CS1"`, `"C S"`), 1007, "callSid is not", false},
		{"callSid an object", meta(`"CS1"`, `{}`), 1007, `"callSid" must be a string`, false},
		{"24 kHz", meta(`8000`, `24000`), 1008, "sampleRate 24000", false},
		{"rate not a number", meta(`8000`, `"fast"`), 1007, "sampleRate is not a whole number", false},
		{"stereo", meta(`"mono"`, `"stereo"`), 1008, "stereo", false},
		{"odd mixType", meta(`"mono"`, `"quad"`), 1008, `mixType "quad"`, false},
		{"metadata not an object", meta(`"direction"`, `"metadata":7,"direction"`), 1007, "metadata is not an object", false},
		{"odd length", started(bin(make([]byte, 101))), 1007, "samples are 2 bytes", true},
		{"unknown event", started(text(`{"event":"transcription"}`)), 1008, `unknown event "transcription"`, true},
		{"playDone in streaming mode", started(text(`{"type":"playDone","data":{"id":"x"}}`)), 1008, `unexpected message type "playDone"`, true},
		{"no event", started(text(`{"dtmf":"1"}`)), 1007, "no event", true},
		{"bad digit", started(text(`{"event":"dtmf","dtmf":"x"}`)), 1007, "dtmf is not one of", true},
		{"second metadata", started(text(meta8k)), 1007, "no event", true},
		{"not UTF-8", started(text("{\"event\":\"\xfe\"}")), 1007, "not UTF-8", true},
		{"oversize audio", started(bin(make([]byte, 5000))), 1009, "larger than 4096 bytes", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, reason := wsaudiotest.RawCall(t, srv.WS(StreamPath), Subprotocol, nil, tc.frames)
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

	cl, err := Dial(context.Background(), srv.WS(StreamPath), CallParams{From: "+14155550100", Rate: 16000})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SendAudio(make([]int16, 800)); err != nil {
		t.Fatal(err)
	}
	_ = cl.Close()
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
	code, reason := wsaudiotest.RawCall(t, srv.WS(StreamPath), Subprotocol, nil, nil)
	if code != 1008 || reason != "no metadata message within 200ms" {
		t.Errorf("closed with %d %q", code, reason)
	}
}
