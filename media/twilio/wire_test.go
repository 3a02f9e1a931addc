package twilio

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsjson"
)

// TestWireFormat reads what the server sends with a bare WebSocket: only media, mark and clear
// messages, in exactly Twilio's shape, prompts cut into whole frames of at most a second.
func TestWireFormat(t *testing.T) {
	welcome := toneClip(t, "welcome", 1200*time.Millisecond)
	bye := toneClip(t, "goodbye", 100*time.Millisecond)
	done := make(chan []media.Event, 1)
	srv := newServer(t, Config{}, func(ctx context.Context, leg media.Leg) {
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
	conn, _, err := websocket.DefaultDialer.Dial(srv.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, m := range []string{msgConnected, msgStart} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	seq := 1
	var got []string
	var audio []byte
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
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
			Event     string `json:"event"`
			StreamSid string `json:"streamSid"`
			Media     *struct {
				Payload string `json:"payload"`
			} `json:"media"`
			Mark *struct {
				Name string `json:"name"`
			} `json:"mark"`
		}
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil || m.StreamSid != "MZ1" {
			t.Fatalf("message %.80s: %v", msg, err)
		}
		switch m.Event {
		case "media":
			if m.Mark != nil || m.Media == nil {
				t.Fatalf("media message %.80s", msg)
			}
			if !strings.HasPrefix(string(msg), `{"event":"media","streamSid":"MZ1","media":{"payload":"`) {
				t.Errorf("media message shape %.60s", msg)
			}
			b, err := base64.StdEncoding.Strict().DecodeString(m.Media.Payload)
			if err != nil || len(b) == 0 || len(b) > 8000 || len(b)%160 != 0 {
				t.Errorf("payload of %d bytes (%v)", len(b), err)
			}
			audio = append(audio, b...)
			got = append(got, "media")
		case "mark":
			if m.Media != nil || m.Mark == nil {
				t.Fatalf("mark message %s", msg)
			}
			want := `{"event":"mark","streamSid":"MZ1","mark":{"name":` + string(wsjson.AppendString(nil, m.Mark.Name)) + `}}`
			if string(msg) != want {
				t.Errorf("mark message %s, want %s", msg, want)
			}
			got = append(got, "mark "+m.Mark.Name)
			seq++
			echo, _ := json.Marshal(map[string]any{"event": "mark", "sequenceNumber": itoa(seq), "streamSid": "MZ1",
				"mark": map[string]string{"name": m.Mark.Name}})
			if err := conn.WriteMessage(websocket.TextMessage, echo); err != nil {
				t.Fatal(err)
			}
		case "clear":
			if string(msg) != `{"event":"clear","streamSid":"MZ1"}` {
				t.Errorf("clear message %s", msg)
			}
			got = append(got, "clear")
		default:
			t.Fatalf("server sent %q; Twilio accepts only media, mark and clear", m.Event)
		}
	}
	want := []string{"media", "media", "mark welcome", "clear", "media", `mark bye "now"`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("messages %q, want %q", got, want)
	}
	if wantAudio := append(append([]byte{}, welcome.Ulaw()...), bye.Ulaw()...); !bytes.Equal(audio, wantAudio) {
		t.Errorf("audio %d bytes, want %d", len(audio), len(wantAudio))
	}
	marks := <-done
	if len(marks) != 2 || !marks[0].Played || !marks[1].Played {
		t.Errorf("marks %+v, want both played (each echoed after its audio)", marks)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestPlayErrors: Play and Clear refuse bad requests and work no more once the leg ended.
func TestPlayErrors(t *testing.T) {
	clip := toneClip(t, "welcome", 20*time.Millisecond)
	l := startedLeg(t, Config{})
	for _, mark := range []string{"", strings.Repeat("m", 300), "bad\xff"} {
		if err := l.Play(clip, mark); err == nil {
			t.Errorf("Play with mark %q accepted", mark)
		}
	}
	if err := l.Play(nil, "m"); err == nil {
		t.Errorf("Play(nil) accepted")
	}
	for i := 0; i < wsjson.OutQueue; i++ {
		if err := l.Play(clip, "m"); err != nil {
			t.Fatalf("Play %d: %v", i, err)
		}
	}
	if err := l.Play(clip, "m"); err != media.ErrBackpressure {
		t.Errorf("Play on a full queue: %v, want ErrBackpressure", err)
	}
	l.s.End(1000, "test", media.ErrHangup, false)
	if err := l.Play(clip, "m"); err != media.ErrLegClosed {
		t.Errorf("Play after end: %v", err)
	}
	if err := l.Clear(); err != media.ErrLegClosed {
		t.Errorf("Clear after end: %v", err)
	}
	if err := l.Hangup("again"); err != nil {
		t.Errorf("second Hangup: %v", err)
	}
}

// BenchmarkPlayPrompt measures sending a 3 s prompt (three media messages and a mark) on a
// server leg over loopback, from the clip's cached wire form ("cached": Play, then the leg's
// writer sends it), and building that wire form ("encode", once per clip per process).
func BenchmarkPlayPrompt(b *testing.B) {
	clip := toneClip(b, "welcome", 3*time.Second)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(clip.Ulaw())))
		for b.Loop() {
			_ = wsjson.BuildChunks(clip, wsjson.Ulaw)
		}
	})
	b.Run("cached", func(b *testing.B) {
		conns := make(chan *websocket.Conn, 1)
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u := wsjson.NewUpgrader()
			c, err := u.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			conns <- c
			<-release
		}))
		defer srv.Close()
		client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			b.Fatal(err)
		}
		drained := make(chan struct{})
		go func() { // the platform: read the raw bytes and discard them, allocating nothing
			defer close(drained)
			buf := make([]byte, 64<<10)
			raw := client.UnderlyingConn()
			for {
				if _, err := raw.Read(buf); err != nil {
					return
				}
			}
		}()
		conn := <-conns
		cfg := Config{}.withDefaults()
		l := newLeg(conn, &cfg, nil)
		for _, m := range []string{msgConnected, msgStart} {
			if err := l.handle([]byte(m)); err != nil {
				b.Fatal(err)
			}
		}
		l.s.Run()
		_ = wsjson.ChunksFor(clip, wsjson.Ulaw) // cached before the clock starts
		marks := &l.s.Counters().MarksOut
		b.ReportAllocs()
		b.SetBytes(int64(len(clip.Ulaw())))
		for b.Loop() {
			want := marks.Load() + 1
			if err := l.Play(clip, "welcome"); err != nil {
				b.Fatal(err)
			}
			for marks.Load() < want { // the writer has sent the prompt and its mark
				runtime.Gosched()
			}
			l.s.Marks().Reset()
		}
		b.StopTimer()
		client.Close() // the leg's reader fails and the leg ends without a closing handshake
		l.Close()
		<-drained
		close(release)
	})
}
