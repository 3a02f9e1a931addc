package telnyx

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsjson"
)

// TestWireFormat reads what the server sends with a bare WebSocket: only media, mark and clear
// messages in exactly Telnyx's shape (no stream_id), prompts cut into whole 20 ms frames of at
// most a second, within RTP mode's 20 ms to 30 s.
func TestWireFormat(t *testing.T) {
	welcome := clipOf(t, "welcome", 1200*time.Millisecond)
	bye := clipOf(t, "goodbye", 100*time.Millisecond)
	done := make(chan []media.Event, 1)
	srv := newTestServer(t, Config{}, func(ctx context.Context, leg media.Leg) {
		var marks []media.Event
		defer func() { done <- marks }()
		<-leg.Events() // start
		_ = leg.Play(welcome, "welcome")
		for ev := range leg.Events() {
			if ev.Type != media.EventMark {
				continue
			}
			marks = append(marks, ev)
			if ev.Mark == "welcome" {
				_ = leg.Clear()
				_ = leg.Play(bye, `bye "now"`)
			} else {
				_ = leg.Hangup("verified")
			}
		}
	})
	conn, _, err := websocket.DefaultDialer.Dial(srv.url(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, m := range []string{msgConnected, msgStart} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var audio []byte
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for seq := 2; ; seq++ {
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1000 || ce.Text != "verified" {
				t.Errorf("stream ended with %v, want close 1000 \"verified\"", err)
			}
			break
		}
		if typ != websocket.TextMessage {
			t.Fatalf("binary frame from the server")
		}
		var m struct {
			Event string `json:"event"`
			Media *struct {
				Payload string `json:"payload"`
			} `json:"media"`
			Mark *struct {
				Name string `json:"name"`
			} `json:"mark"`
		}
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("message %.80s: %v", msg, err)
		}
		switch m.Event {
		case "media":
			if !strings.HasPrefix(string(msg), `{"event":"media","media":{"payload":"`) || m.Media == nil || m.Mark != nil {
				t.Fatalf("media message %.60s", msg)
			}
			b, err := base64.StdEncoding.Strict().DecodeString(m.Media.Payload)
			if err != nil || len(b) == 0 || len(b) > 8000 || len(b)%160 != 0 {
				t.Errorf("payload of %d bytes (%v); want whole 20 ms frames, at most a second", len(b), err)
			}
			audio = append(audio, b...)
			got = append(got, "media")
		case "mark":
			want := `{"event":"mark","mark":{"name":` + string(wsjson.AppendString(nil, m.Mark.Name)) + `}}`
			if string(msg) != want {
				t.Errorf("mark message %s, want %s", msg, want)
			}
			got = append(got, "mark "+m.Mark.Name)
			echo, _ := json.Marshal(map[string]any{"event": "mark", "sequence_number": fmt.Sprint(seq), "stream_id": "S1",
				"mark": map[string]string{"name": m.Mark.Name}})
			if err := conn.WriteMessage(websocket.TextMessage, echo); err != nil {
				t.Fatal(err)
			}
		case "clear":
			if string(msg) != `{"event":"clear"}` {
				t.Errorf("clear message %s", msg)
			}
			got = append(got, "clear")
		default:
			t.Fatalf("server sent %q; Telnyx takes only media, mark and clear", m.Event)
		}
	}
	if want := []string{"media", "media", "mark welcome", "clear", "media", `mark bye "now"`}; !slices.Equal(got, want) {
		t.Errorf("messages %q, want %q", got, want)
	}
	if want := append(slices.Clone(welcome.Ulaw()), bye.Ulaw()...); !bytes.Equal(audio, want) {
		t.Errorf("audio %d bytes, want %d", len(audio), len(want))
	}
	if marks := <-done; len(marks) != 2 || !marks[0].Played || !marks[1].Played {
		t.Errorf("marks %+v, want both played", marks)
	}
}

// TestCodecs: the leg decodes each codec Telnyx may stream and answers in the same one; a
// client on that codec hears the prompt and the receiver gets the caller's audio, both equal to
// the audio through the codec.
func TestCodecs(t *testing.T) {
	clip := clipOf(t, "welcome", 300*time.Millisecond)
	caller := tone(4 * media.FrameSamples)
	for _, tc := range []struct {
		encoding string
		codec    wsjson.Codec
	}{{"PCMU", wsjson.Ulaw}, {"PCMA", wsjson.Alaw}, {"L16", wsjson.L16}, {"audio/x-mulaw", wsjson.Ulaw}} {
		t.Run(tc.encoding, func(t *testing.T) {
			rx := &tap{}
			srv := newTestServer(t, Config{NewDetector: func() media.ToneDetector { return rx }}, func(ctx context.Context, leg media.Leg) {
				<-leg.Events()
				_ = leg.Play(clip, "welcome")
				legEvents(leg)
			})
			cl, err := Dial(context.Background(), srv.url(), CallParams{Encoding: tc.encoding})
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.SendAudio(caller); err != nil {
				t.Fatal(err)
			}
			var heard []int16
			for ev := range cl.Events() {
				switch ev.Kind {
				case media.SimAudio:
					heard = append(heard, ev.Audio...)
				case media.SimMark:
					go cl.Stop()
				}
			}
			through := func(pcm []int16) []int16 {
				return tc.codec.Decode(make([]int16, len(pcm)), tc.codec.Append(nil, pcm))
			}
			if !slices.Equal(heard, through(clip.PCM())) {
				t.Errorf("client heard %d samples, not the clip's %d through %s", len(heard), len(clip.PCM()), tc.codec)
			}
			if got := rx.samples(); !slices.Equal(got, through(caller)) {
				t.Errorf("receiver got %d samples, not the caller's %d through %s", len(got), len(caller), tc.codec)
			}
			if tc.codec == wsjson.L16 && !slices.Equal(heard, clip.PCM()) {
				t.Errorf("L16 is lossless; the prompt changed")
			}
			if err := cl.Err(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestErrorFrame: an error frame from Telnyx is counted and logged, and the call goes on.
func TestErrorFrame(t *testing.T) {
	stats := make(chan Stats, 1)
	srv := newTestServer(t, Config{}, func(ctx context.Context, leg media.Leg) {
		for ev := range leg.Events() {
			if ev.Type == media.EventDTMF {
				stats <- leg.(*Leg).Stats()
			}
		}
	})
	code, _ := rawCall(t, srv.url(), nil, []frame{text(msgConnected), text(msgStart),
		text(`{"event":"error","stream_id":"S1","payload":{"code":100003,"title":"malformed_frame","detail":"caller said 1234"}}`),
		text(`{"event":"error","payload":{"code":100005,"title":"Rate Limit!"}}`),
		text(`{"event":"error"}`),
		text(`{"event":"dtmf","sequence_number":"3","dtmf":{"digit":"1"}}`),
		text(`{"event":"stop","sequence_number":"4","stop":{}}`)})
	if code != websocket.CloseNormalClosure {
		t.Errorf("closed with %d, want 1000 after stop", code)
	}
	if s := <-stats; s.Errors != 3 {
		t.Errorf("%d errors counted, want 3", s.Errors)
	}
	if safeTitle([]byte("malformed_frame")) != "malformed_frame" || safeTitle([]byte("Rate Limit!")) != "" {
		t.Errorf("safeTitle lets through what it should not, or hides a plain title")
	}
}

// TestClientRefusesBadServer: the simulated Telnyx answers what Telnyx would refuse with an
// error frame and reports it through Err, and keeps the stream up.
func TestClientRefusesBadServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  int
		msg  string
		want string
	}{
		{"unknown event", websocket.TextMessage, `{"event":"play"}`, "malformed_frame"},
		{"bad JSON", websocket.TextMessage, `{"event":`, "malformed_frame"},
		{"binary", websocket.BinaryMessage, "\x00\x01", "malformed_frame"},
		{"bad base64", websocket.TextMessage, `{"event":"media","media":{"payload":"!!"}}`, "invalid_media"},
		{"too short", websocket.TextMessage, `{"event":"media","media":{"payload":"/w=="}}`, "invalid_media"},
		{"mark without name", websocket.TextMessage, `{"event":"mark","mark":{}}`, "malformed_frame"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				up := wsjson.NewUpgrader()
				conn, err := up.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer conn.Close()
				for range 2 { // connected, start
					if _, _, err := conn.ReadMessage(); err != nil {
						return
					}
				}
				_ = conn.WriteMessage(tc.typ, []byte(tc.msg))
				_, msg, err := conn.ReadMessage()
				if err == nil {
					reply <- string(msg)
				}
				_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
				_, _, _ = conn.ReadMessage()
			}))
			defer srv.Close()
			cl, err := Dial(context.Background(), srv.URL, CallParams{StreamID: "S9"})
			if err != nil {
				t.Fatal(err)
			}
			evs := events(t, cl)
			var frame struct {
				Event    string `json:"event"`
				StreamID string `json:"stream_id"`
				Payload  struct {
					Code  int    `json:"code"`
					Title string `json:"title"`
				} `json:"payload"`
			}
			select {
			case msg := <-reply:
				if err := json.Unmarshal([]byte(msg), &frame); err != nil || frame.Event != "error" ||
					frame.StreamID != "S9" || frame.Payload.Title != tc.want || frame.Payload.Code < 100002 {
					t.Errorf("client answered %s, want an error frame %s", msg, tc.want)
				}
			default:
				t.Errorf("client sent nothing back")
			}
			if err := cl.Err(); !errors.Is(err, ErrServerProtocol) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Err() = %v", err)
			}
			if last := evs[len(evs)-1]; last.Kind != media.SimClosed || last.Code != 1000 {
				t.Errorf("last event %+v, want closed 1000", last)
			}
			cl.Close()
		})
	}
}
