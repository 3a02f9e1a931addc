package freeswitch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsaudio/wsaudiotest"
)

const meta16k = `{"uuid":"U1","from":"+14155550100","to":"+18005550199","sampleRate":"16k","mixType":"mono"}`

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
		return append([]wsaudiotest.Frame{text(meta16k)}, fs...)
	}
	meta := func(old, new string) []wsaudiotest.Frame {
		return []wsaudiotest.Frame{text(strings.Replace(meta16k, old, new, 1))}
	}
	for _, tc := range []struct {
		name    string
		frames  []wsaudiotest.Frame
		code    int
		reason  string
		started bool
	}{
		{"audio without metadata", []wsaudiotest.Frame{bin(make([]byte, 640))}, 1008, "binary audio before the metadata", false},
		{"metadata not JSON", []wsaudiotest.Frame{text(`caller=1000`)}, 1007, "metadata must be a JSON object", false},
		{"metadata single-quoted", []wsaudiotest.Frame{text(`{'caller':'1000'}`)}, 1007, "metadata must be a JSON object", false},
		{"bad uuid", meta(`"U1"`, `"U 1"`), 1007, "uuid is not", false},
		{"rate 24k", meta(`"16k"`, `24000`), 1008, "sampleRate 24000", false},
		{"rate words", meta(`"16k"`, `"wide"`), 1007, "sampleRate is not", false},
		{"stereo", meta(`"mono"`, `"stereo"`), 1008, "stereo", false},
		{"from an array", meta(`"+14155550100"`, `[1]`), 1007, `"from" must be a string`, false},
		{"text after metadata", started(text(`{"event":"dtmf","dtmf":"1"}`)), 1008, "text message after the metadata", true},
		{"odd length", started(bin(make([]byte, 3))), 1007, "samples are 2 bytes", true},
		{"oversize audio", started(bin(make([]byte, 4098))), 1009, "larger than 4096 bytes", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, reason := wsaudiotest.RawCall(t, srv.WS(StreamPath), DefaultSubprotocol, nil, tc.frames)
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

	// An empty binary frame (graceful shutdown) is harmless; a good call still works.
	cl, err := Dial(context.Background(), srv.WS(StreamPath), CallParams{Rate: 16000})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SendAudio(make([]int16, 480)); err != nil {
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
	code, reason := wsaudiotest.RawCall(t, srv.WS(StreamPath), DefaultSubprotocol, nil, []wsaudiotest.Frame{
		text(meta16k), bin(nil), bin(make([]byte, 640)), text("x"),
	})
	if code != 1008 || !strings.Contains(reason, "text message after the metadata") {
		t.Errorf("after an empty binary frame: closed with %d %q", code, reason)
	}
	<-ended
}

// TestStartTimeout: a stream that sends no metadata is closed with 1008 after StartTimeout.
func TestStartTimeout(t *testing.T) {
	srv := wsaudiotest.NewServer(t, NewHandler(Config{StartTimeout: 200 * time.Millisecond}, nil, zaptest.NewLogger(t)))
	code, reason := wsaudiotest.RawCall(t, srv.WS(StreamPath), DefaultSubprotocol, nil, nil)
	if code != 1008 || reason != "no metadata message within 200ms" {
		t.Errorf("closed with %d %q", code, reason)
	}
}
