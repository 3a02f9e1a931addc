package twilio

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/media"
)

const (
	msgConnected = `{"event":"connected","protocol":"Call","version":"1.0.0"}`
	msgStart     = `{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"streamSid":"MZ1","accountSid":"AC1","callSid":"CA1","tracks":["inbound"],"customParameters":{"from":"+14155550100"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}`
)

// silence160 is 160 bytes (20 ms) of μ-law silence, base64.
var silence160 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{media.UlawSilence}, 160))

func mediaMsg(seq, payload string) string {
	return `{"event":"media","sequenceNumber":"` + seq + `","streamSid":"MZ1","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"` + payload + `"}}`
}

type rawFrame struct {
	typ  int
	data string
}

func text(s string) rawFrame { return rawFrame{websocket.TextMessage, s} }

// rawCall plays frames at the server with a bare WebSocket and returns the close frame it
// got back.
func rawCall(t *testing.T, url string, frames []rawFrame) (int, string) {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
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

// TestBadInput: each protocol violation ends that call with its close code and a clear
// reason, the flow sees a hangup wrapping media.ErrProtocol, and the server then serves a good
// call as usual.
func TestBadInput(t *testing.T) {
	ended := make(chan error, 1)
	srv := newServer(t, Config{ReadLimit: 4096}, func(ctx context.Context, leg media.Leg) {
		evs := drain(leg)
		ended <- evs[len(evs)-1].Err
	})
	pre := []rawFrame{text(msgConnected), text(msgStart)}
	started := func(fs ...rawFrame) []rawFrame { return append(append([]rawFrame{}, pre...), fs...) }
	for _, tc := range []struct {
		name    string
		frames  []rawFrame
		code    int
		reason  string
		started bool
	}{
		{"bad JSON", started(text(`{"event":"media",`)), 1007, "bad JSON", true},
		{"not an object", started(text(`["media"]`)), 1007, "not a JSON object", true},
		{"trailing data", started(text(`{"event":"stop","sequenceNumber":"2"} {}`)), 1007, "data after the message", true},
		{"not UTF-8", started(text("{\"event\":\"dtmf\",\"x\":\"\xff\"}")), 1007, "not UTF-8", true},
		{"no event", started(text(`{"sequenceNumber":"2"}`)), 1007, "no event", true},
		{"unknown event", started(text(`{"event":"bogus","sequenceNumber":"2","streamSid":"MZ1"}`)), 1008, `unknown event "bogus"`, true},
		{"binary frame", started(rawFrame{websocket.BinaryMessage, "\xff\xff"}), 1003, "binary", true},
		{"media before start", []rawFrame{text(msgConnected), text(mediaMsg("1", silence160))}, 1008, "media before start", false},
		{"start before connected", []rawFrame{text(msgStart)}, 1008, "start before connected", false},
		{"second connected", []rawFrame{text(msgConnected), text(msgConnected)}, 1008, "second connected", false},
		{"second start", started(text(strings.Replace(msgStart, `"1"`, `"2"`, 1))), 1008, "second start", true},
		{"invalid base64", started(text(mediaMsg("2", "!!!!"))), 1007, "not base64", true},
		{"unpadded base64", started(text(mediaMsg("2", "//8"))), 1007, "not padded", true},
		{"base64 with a line break", started(text(mediaMsg("2", `///\n////`))), 1007, "not base64", true},
		{"empty payload", started(text(mediaMsg("2", ""))), 1007, "empty", true},
		{"oversize message", started(text(mediaMsg("2", strings.Repeat("////", 1500)))), 1009, "larger than 4096 bytes", true},
		{"sequence out of order", started(text(mediaMsg("3", silence160)), text(mediaMsg("2", silence160))), 1008, "sequenceNumber 2 after 3", true},
		{"sequence repeated", started(text(mediaMsg("1", silence160))), 1008, "sequenceNumber 1 after 1", true},
		{"sequence not a counter", started(text(mediaMsg("x2", silence160))), 1007, "sequenceNumber is not", true},
		{"sequence missing", started(text(`{"event":"dtmf","streamSid":"MZ1","dtmf":{"digit":"1"}}`)), 1007, "no sequenceNumber", true},
		{"sequence as a number", started(text(`{"event":"dtmf","sequenceNumber":2,"dtmf":{"digit":"1"}}`)), 1007, "must be a string", true},
		{"chunk not a counter", started(text(strings.Replace(mediaMsg("2", silence160), `"chunk":"1"`, `"chunk":"-1"`, 1))), 1007, "chunk", true},
		{"timestamp as a number", started(text(strings.Replace(mediaMsg("2", silence160), `"timestamp":"0"`, `"timestamp":0`, 1))), 1007, "timestamp must be a string", true},
		{"media without payload", started(text(`{"event":"media","sequenceNumber":"2","media":{"chunk":"1","timestamp":"0"}}`)), 1007, "needs payload", true},
		{"streamSid mismatch", started(text(strings.Replace(mediaMsg("2", silence160), `"MZ1"`, `"MZ2"`, 1))), 1008, "streamSid differs", true},
		{"bad digit", started(text(`{"event":"dtmf","sequenceNumber":"2","dtmf":{"track":"inbound_track","digit":"x"}}`)), 1007, "dtmf.digit", true},
		{"two digits", started(text(`{"event":"dtmf","sequenceNumber":"2","dtmf":{"digit":"12"}}`)), 1007, "dtmf.digit", true},
		{"unknown mark", started(text(`{"event":"mark","sequenceNumber":"2","mark":{"name":"nope"}}`)), 1008, `mark "nope" was never sent`, true},
		{"unsupported encoding", []rawFrame{text(msgConnected), text(strings.Replace(msgStart, "audio/x-mulaw", "audio/l16", 1))}, 1008, "unsupported media encoding", false},
		{"unsupported rate", []rawFrame{text(msgConnected), text(strings.Replace(msgStart, "8000", "16000", 1))}, 1008, "sample rate 16000", false},
		{"start without callSid", []rawFrame{text(msgConnected), text(strings.Replace(msgStart, `"callSid":"CA1",`, "", 1))}, 1007, "callSid", false},
		{"start with a bad streamSid", []rawFrame{text(msgConnected), text(strings.ReplaceAll(msgStart, `"MZ1"`, `"MZ 1"`))}, 1007, "streamSid", false},
		{"parameter not a string", []rawFrame{text(msgConnected), text(strings.Replace(msgStart, `"+14155550100"`, `14155550100`, 1))}, 1007, "customParameters", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, reason := rawCall(t, srv.wsURL(), tc.frames)
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
			// The server is unharmed: a good call follows.
			cl, err := Dial(context.Background(), srv.wsURL(), CallParams{})
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.SendAudio(make([]byte, 320)); err != nil {
				t.Fatal(err)
			}
			if err := cl.Stop(); err != nil {
				t.Fatal(err)
			}
			evs := collect(t, cl, 5*time.Second)
			if last := evs[len(evs)-1]; last.CloseCode != websocket.CloseNormalClosure {
				t.Errorf("good call closed with %d %q", last.CloseCode, last.CloseText)
			}
			if err := <-ended; !errors.Is(err, media.ErrHangup) {
				t.Errorf("good call ended with %v, want ErrHangup", err)
			}
		})
	}
}

// TestStartTimeout: a stream that connects but never starts is closed with 1008 once
// StartTimeout (default 10 s) passes, and the flow never runs. It runs in a synctest bubble
// over net.Pipe, so the ten seconds are fake.
func TestStartTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := newPipeListener()
		var handlers sync.WaitGroup
		h := NewHandler(Config{}, func(ctx context.Context, leg media.Leg) {
			t.Error("serve ran for a stream that never started")
			drain(leg)
		}, zaptest.NewLogger(t))
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handlers.Add(1)
			defer handlers.Done()
			h.ServeHTTP(w, r)
		})}
		go func() { _ = srv.Serve(ln) }()
		defer func() {
			_ = srv.Close()
			handlers.Wait()
			h.Wait()
		}()

		d := websocket.Dialer{NetDialContext: ln.DialContext}
		conn, _, err := d.Dial("ws://callproof.test"+StreamPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		began := time.Now()
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msgConnected)); err != nil {
			t.Fatal(err)
		}
		_, _, err = conn.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || ce.Text != "no start message within 10s" {
			t.Errorf("read: %v, want close 1008 \"no start message within 10s\"", err)
		}
		if d := time.Since(began); d != DefaultStartTimeout {
			t.Errorf("closed after %s, want %s", d, DefaultStartTimeout)
		}
	})
}

// pipeListener is an in-memory net.Listener whose connections are net.Pipe ends.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// TestStopBeforeStart: "stop" before "start" closes cleanly without running the flow.
func TestStopBeforeStart(t *testing.T) {
	srv := newServer(t, Config{}, func(ctx context.Context, leg media.Leg) {
		t.Error("serve ran for a stream that never started")
		drain(leg)
	})
	code, reason := rawCall(t, srv.wsURL(), []rawFrame{text(msgConnected), text(`{"event":"stop","sequenceNumber":"1","stop":{}}`)})
	if code != websocket.CloseNormalClosure || reason != "stream stopped" {
		t.Errorf("closed with %d %q", code, reason)
	}
}
