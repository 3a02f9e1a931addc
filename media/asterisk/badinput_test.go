package asterisk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/media"
)

// msg is one message a raw peer sends.
type msg struct {
	typ  int
	data []byte
}

func text(s string) msg { return msg{websocket.TextMessage, []byte(s)} }
func bin(n int) msg     { return msg{websocket.BinaryMessage, make([]byte, n)} }
func repeat(m msg, n int) []msg {
	out := make([]msg, n)
	for i := range out {
		out[i] = m
	}
	return out
}

const start = "MEDIA_START connection_id:c1 channel:WebSocket/c1/0x1 channel_id:1.1 format:ulaw optimal_frame_size:160 ptime:20"

// TestBadInput sends each kind of broken stream over a raw WebSocket and checks the close code
// and reason, that a call that had started ends with a protocol error, and that the server
// then serves a good call.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name    string
		send    []msg
		code    int
		reason  string
		started bool
	}{
		{"unknown event", []msg{text(start), text("MEDIA_STOP")}, closePolicy, "unknown control message MEDIA_STOP", true},
		{"event before start", []msg{text("DTMF_END digit:1")}, closePolicy, "DTMF_END before MEDIA_START", false},
		{"media before start", repeat(bin(160), maxEarlyMedia+1), closePolicy, "media before MEDIA_START", false},
		{"no start", nil, closePolicy, "no MEDIA_START within", false},
		{"odd slin", []msg{text(strings.Replace(start, "format:ulaw optimal_frame_size:160", "format:slin optimal_frame_size:320", 1)), bin(321)},
			closeInvalid, "binary message of 321 bytes", true},
		{"frame too long", []msg{text(start), bin(1601)}, closeInvalid, "at most 1600 bytes", true},
		{"empty frame", []msg{text(start), bin(0)}, closeInvalid, "binary message of 0 bytes", true},
		{"oversize message", []msg{text(start), text(strings.Repeat("x", readLimit+1))}, closeTooBig, "larger than 65536", true},
		{"unsupported format", []msg{text(strings.Replace(start, "ulaw", "g722", 1))}, closeUnsupported, `format "g722" is not supported`, false},
		{"passthrough", []msg{text(strings.Replace(start, "optimal_frame_size:160", "optimal_frame_size:0", 1))}, closeUnsupported, "passthrough", false},
		{"passthrough error", []msg{text(start), text("ERROR channel_id:1.1 error_text:START_MEDIA_BUFFERING not supported in passthrough mode")},
			closeUnsupported, "passthrough", true},
		{"second start", []msg{text(start), text(start)}, closePolicy, "second MEDIA_START", true},
		{"malformed start", []msg{text("MEDIA_START connection_id:c1 format:ulaw optimal_frame_size")}, closeInvalid, "not key:value", false},
		{"format switch", []msg{text(start), text(`{"event":"MEDIA_XON"}`)}, closePolicy, "format changed", true},
		{"completion never sent", []msg{text(start), text("MEDIA_BUFFERING_COMPLETED 99")}, closePolicy, "never sent", true},
		{"bad digit", []msg{text(start), text("DTMF_END digit:x")}, closeInvalid, "DTMF_END digit", true},
		{"not utf8", []msg{text(start), {websocket.TextMessage, []byte{0xff, 0xfe}}}, closeInvalid, "not UTF-8", true},
		{"bad channel variable", []msg{text(`{"event":"MEDIA_START","connection_id":"c","format":"ulaw","optimal_frame_size":160,"channel_variables":{"CALLPROOF_FROM":"+1\u0007"}}`)},
			closeInvalid, "CALLPROOF_FROM", false},
	}
	s := newServer(t, Config{StartTimeout: 300 * time.Millisecond})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, _, err := websocket.DefaultDialer.Dial(s.wsURL(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for _, m := range tt.send {
				if err := conn.WriteMessage(m.typ, m.data); err != nil {
					t.Fatal(err)
				}
			}
			_ = conn.SetReadDeadline(time.Now().Add(wait))
			var ce *websocket.CloseError
			for {
				_, _, err := conn.ReadMessage()
				if err == nil {
					continue
				}
				if !errors.As(err, &ce) {
					t.Fatalf("connection ended with %v, want a close frame", err)
				}
				break
			}
			if ce.Code != tt.code || !strings.Contains(ce.Text, tt.reason) {
				t.Fatalf("closed with %d %q, want %d containing %q", ce.Code, ce.Text, tt.code, tt.reason)
			}
			if !tt.started {
				select {
				case <-s.legs:
					t.Fatal("a call started")
				default:
				}
				return
			}
			leg := s.nextLeg(t)
			if ev := drainLeg(t, leg); ev.Type != media.EventHangup || !errors.Is(ev.Err, media.ErrProtocol) {
				t.Fatalf("last event %+v, want a hangup with a protocol error", ev)
			}
		})
	}

	// The server still serves a good call.
	cl := dial(t, s.wsURL(), DialOptions{})
	leg := s.nextLeg(t)
	nextEvent(t, leg)
	if err := leg.Play(toneClip(t, "goodbye", 100*time.Millisecond), "goodbye"); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, leg); ev.Type != media.EventMark || !ev.Played {
		t.Fatalf("good call: %+v", ev)
	}
	_ = leg.Hangup("done")
	if ev, _ := nextSimKind(t, cl); ev.Kind != media.SimMark {
		t.Fatalf("good call: client saw %+v", ev)
	}
	if ev, _ := nextSimKind(t, cl); ev.Kind != media.SimClosed || ev.Code != 1000 {
		t.Fatalf("good call: client saw %+v", ev)
	}
}

// TestRefused checks the answers before any upgrade.
func TestRefused(t *testing.T) {
	s := newServer(t, Config{Username: "ast", Password: "pw"})
	only := newServer(t, Config{AllowFrom: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	tests := []struct {
		name string
		url  string
		o    DialOptions
		want int
	}{
		{"no credentials", s.wsURL(), DialOptions{}, http.StatusUnauthorized},
		{"wrong password", s.wsURL(), DialOptions{Username: "ast", Password: "nope"}, http.StatusUnauthorized},
		{"wrong user", s.wsURL(), DialOptions{Username: "bob", Password: "pw"}, http.StatusUnauthorized},
		{"address", only.wsURL(), DialOptions{}, http.StatusForbidden},
		{"control character", s.wsURL(), DialOptions{Username: "ast", Password: "pw", From: "+1\n"}, http.StatusBadRequest},
		{"long value", s.wsURL(), DialOptions{Username: "ast", Password: "pw", Params: map[string]string{"account": strings.Repeat("1", 200)}}, http.StatusBadRequest},
		{"repeated", s.wsURL() + "?lang=en-US&lang=es-US", DialOptions{Username: "ast", Password: "pw"}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Dial(context.Background(), tt.url, tt.o)
			if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", tt.want)) {
				t.Fatalf("got %v, want HTTP %d", err, tt.want)
			}
		})
	}
	cl := dial(t, s.wsURL(), DialOptions{Username: "ast", Password: "pw"})
	leg := s.nextLeg(t)
	_ = cl.Hangup()
	drainLeg(t, leg)

	bad := NewHandler(Config{Username: "only-user"}, nil, zaptest.NewLogger(t))
	rec := httptest.NewRecorder()
	bad.ServeHTTP(rec, httptest.NewRequest("GET", Path, nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("misconfigured handler answered %d", rec.Code)
	}
}

func TestConfigValidate(t *testing.T) {
	for i, c := range []Config{
		{Username: "u"},
		{Password: "p"},
		{Username: "a:b", Password: "p"},
		{DTMF: 7},
		{DTMF: media.DTMFInband},
		{StartTimeout: -1},
		{AllowFrom: []netip.Prefix{{}}},
	} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("config %d: %v, want ErrConfig", i, err)
		}
	}
	if err := (Config{Username: "u", Password: "p"}).Validate(); err != nil {
		t.Fatal(err)
	}
}
