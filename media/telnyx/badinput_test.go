package telnyx

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
)

const (
	msgConnected = `{"event":"connected","version":"1.0.0"}`
	msgStart     = `{"event":"start","sequence_number":"1","stream_id":"S1","start":{"user_id":"U1","call_control_id":"v3:C1","call_session_id":"CS1","from":"+14155550100","to":"+18005550199","client_state":"","custom_parameters":{"request":"delete"},"media_format":{"encoding":"PCMU","sample_rate":8000,"channels":1}}}`
)

// silence160 is 160 bytes (20 ms) of μ-law silence, base64.
var silence160 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{media.UlawSilence}, 160))

func mediaMsg(seq, chunk, payload string) string {
	return `{"event":"media","sequence_number":"` + seq + `","stream_id":"S1","media":{"track":"inbound","chunk":"` + chunk +
		`","timestamp":"0","payload":"` + payload + `"}}`
}

type frame struct {
	typ  int
	data string
}

func text(s string) frame { return frame{websocket.TextMessage, s} }

// rawCall plays frames at the server with a bare WebSocket and returns the close frame it got
// back.
func rawCall(t *testing.T, url string, hdr http.Header, frames []frame) (int, string) {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, f := range frames {
		if err := conn.WriteMessage(f.typ, []byte(f.data)); err != nil {
			break // the server may already have closed
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Text
			}
			t.Fatalf("read: %v (want a close frame)", err)
		}
		t.Fatalf("server sent %q to a stream that only misbehaved", msg)
	}
}

// TestBadInput: each protocol violation ends that call with its close code and a clear reason,
// the flow (when the call had started) sees a hangup wrapping media.ErrProtocol, and the server
// then serves a good call as usual.
func TestBadInput(t *testing.T) {
	ended := make(chan error, 1)
	srv := newTestServer(t, Config{ReadLimit: 4096}, func(ctx context.Context, leg media.Leg) {
		evs := legEvents(leg)
		ended <- evs[len(evs)-1].Err
	})
	started := func(fs ...frame) []frame { return append([]frame{text(msgConnected), text(msgStart)}, fs...) }
	startWith := func(old, new string) []frame {
		return []frame{text(msgConnected), text(strings.Replace(msgStart, old, new, 1))}
	}
	for _, tc := range []struct {
		name    string
		frames  []frame
		code    int
		reason  string
		started bool
	}{
		{"bad JSON", started(text(`{"event":"media",`)), 1007, "bad JSON", true},
		{"not an object", started(text(`["media"]`)), 1007, "not a JSON object", true},
		{"trailing data", started(text(`{"event":"stop"} {}`)), 1007, "data after the message", true},
		{"not UTF-8", started(text("{\"event\":\"dtmf\",\"x\":\"\xff\"}")), 1007, "not UTF-8", true},
		{"no event", started(text(`{"sequence_number":"2"}`)), 1007, "no event", true},
		{"event not a string", started(text(`{"event":5}`)), 1007, "event must be a string", true},
		{"unknown event", started(text(`{"event":"bogus","sequence_number":"2"}`)), 1008, `unknown event "bogus"`, true},
		{"binary frame", started(frame{websocket.BinaryMessage, "\xff\xff"}), 1003, "binary", true},
		{"media before start", []frame{text(msgConnected), text(mediaMsg("2", "1", silence160))}, 1008, "media before start", false},
		{"dtmf before start", []frame{text(`{"event":"dtmf","dtmf":{"digit":"1"}}`)}, 1008, "dtmf before start", false},
		{"second connected", []frame{text(msgConnected), text(msgConnected)}, 1008, "second connected", false},
		{"connected after start", started(text(msgConnected)), 1008, "connected after start", true},
		{"second start", started(text(msgStart)), 1008, "second start", true},
		{"invalid base64", started(text(mediaMsg("2", "1", "!!!!"))), 1007, "not base64", true},
		{"unpadded base64", started(text(mediaMsg("2", "1", "//8"))), 1007, "not padded", true},
		{"base64 with a line break", started(text(mediaMsg("2", "1", `///\n////`))), 1007, "not base64", true},
		{"empty payload", started(text(mediaMsg("2", "1", ""))), 1007, "empty", true},
		{"oversize message", started(text(mediaMsg("2", "1", strings.Repeat("////", 1500)))), 1009, "larger than 4096 bytes", true},
		{"sequence not a counter", started(text(mediaMsg("x2", "1", silence160))), 1007, "sequence_number is not", true},
		{"sequence as a number", started(text(`{"event":"dtmf","sequence_number":2,"dtmf":{"digit":"1"}}`)), 1007, "must be a string", true},
		{"chunk missing", started(text(`{"event":"media","media":{"payload":"` + silence160 + `"}}`)), 1007, "needs payload and chunk", true},
		{"chunk not a counter", started(text(mediaMsg("2", "-1", silence160))), 1007, "chunk", true},
		{"timestamp not a counter", started(text(strings.Replace(mediaMsg("2", "1", silence160), `"timestamp":"0"`, `"timestamp":"x"`, 1))), 1007, "timestamp", true},
		{"stream_id mismatch", started(text(strings.Replace(mediaMsg("2", "1", silence160), `"S1"`, `"S2"`, 1))), 1008, "stream_id differs", true},
		{"bad digit", started(text(`{"event":"dtmf","sequence_number":"2","dtmf":{"digit":"x"}}`)), 1007, "dtmf.digit", true},
		{"dtmf without object", started(text(`{"event":"dtmf","sequence_number":"2"}`)), 1007, "no dtmf object", true},
		{"unknown mark", started(text(`{"event":"mark","sequence_number":"2","mark":{"name":"nope"}}`)), 1008, `mark "nope" was never sent`, true},
		{"unsupported encoding", startWith(`"PCMU"`, `"OPUS"`), 1008, `unsupported media encoding "OPUS": configure PCMU, PCMA or L16`, false},
		{"unsupported rate", startWith(`8000`, `16000`), 1008, "sample rate 16000: configure 8000 Hz", false},
		{"stereo", startWith(`"channels":1`, `"channels":2`), 1008, "channel count 2", false},
		{"odd L16 payload", append(startWith(`"PCMU"`, `"L16"`), text(mediaMsg("2", "1", "AAAA"))), 1007, "whole L16 samples", true},
		{"start without call_control_id", startWith(`"call_control_id":"v3:C1",`, ""), 1007, "call_control_id", false},
		{"start with a bad stream_id", []frame{text(strings.Replace(msgStart, `"S1"`, `"S 1"`, 1))}, 1007, "stream_id", false},
		{"parameter not a string", startWith(`"delete"`, `5`), 1007, "custom_parameters", false},
		{"rate not an integer", startWith(`8000`, `"8000"`), 1007, "sample_rate must be an integer", false},
		{"error payload not an object", started(text(`{"event":"error","payload":"x"}`)), 1007, "payload must be an object", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, reason := rawCall(t, srv.url(), nil, tc.frames)
			if code != tc.code || !strings.Contains(reason, tc.reason) {
				t.Errorf("closed with %d %q, want %d containing %q", code, reason, tc.code, tc.reason)
			}
			if tc.started {
				select {
				case err := <-ended:
					if !errors.Is(err, media.ErrProtocol) || !strings.Contains(err.Error(), tc.reason) {
						t.Errorf("flow saw hangup %v, want ErrProtocol with %q", err, tc.reason)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("flow did not see the hangup")
				}
			}
			goodCall(t, srv.url(), ended)
		})
	}
}

// goodCall runs a short well-behaved call and checks it ends normally.
func goodCall(t *testing.T, url string, ended <-chan error) {
	t.Helper()
	cl, err := Dial(context.Background(), url, CallParams{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SendAudio(make([]int16, 2*media.FrameSamples)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Stop(); err != nil {
		t.Fatal(err)
	}
	evs := events(t, cl)
	if last := evs[len(evs)-1]; last.Kind != media.SimClosed || last.Code != websocket.CloseNormalClosure {
		t.Errorf("good call closed with %+v", last)
	}
	if err := <-ended; !errors.Is(err, media.ErrHangup) {
		t.Errorf("good call ended with %v, want ErrHangup", err)
	}
}

// TestStopBeforeStart: "stop" before "start" closes cleanly without running the flow, and a
// stream may start without "connected".
func TestStopBeforeStart(t *testing.T) {
	srv := newTestServer(t, Config{}, func(ctx context.Context, leg media.Leg) {
		evs := legEvents(leg)
		if len(evs) != 2 || evs[0].Type != media.EventStart || !errors.Is(evs[1].Err, media.ErrHangup) {
			t.Errorf("leg events %+v", evs)
		}
	})
	code, reason := rawCall(t, srv.url(), nil, []frame{text(msgConnected), text(`{"event":"stop","sequence_number":"1","stop":{}}`)})
	if code != websocket.CloseNormalClosure || reason != "stream stopped" {
		t.Errorf("closed with %d %q", code, reason)
	}
	if n := srv.calls(); n != 0 {
		t.Errorf("serve ran %d times for a stream that never started", n)
	}
	code, reason = rawCall(t, srv.url(), nil, []frame{text(msgStart), text(`{"event":"stop","sequence_number":"2","stream_id":"S1","stop":{}}`)})
	if code != websocket.CloseNormalClosure || reason != "stream stopped" {
		t.Errorf("start without connected: closed with %d %q", code, reason)
	}
}
