package twilio

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsjson"
)

// TestClientMediaMessage: the client writes its media messages by hand, byte for byte as
// encoding/json writes them.
func TestClientMediaMessage(t *testing.T) {
	for _, sid := range []string{"MZ0123456789abcdef", `MZ"<&>`} {
		q, _ := json.Marshal(sid)
		ulaw := bytes.Repeat([]byte{0x7f, 0x00, 0xff}, 53)
		got := appendMedia(nil, string(q), 12, 11, 200, ulaw)
		want, _ := json.Marshal(clientMsg{Event: "media", SequenceNumber: "12", StreamSid: sid, Media: &clientMedia{
			Track: "inbound", Chunk: "11", Timestamp: "200", Payload: base64.StdEncoding.EncodeToString(ulaw)}})
		if !bytes.Equal(got, want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

// playServer is a stand-in for Callproof that sends msgs once the stream has started, then
// reads until the client closes; with sink it reads the raw bytes without allocating and never
// answers the close.
func playServer(t testing.TB, msgs []string, sink bool) string {
	t.Helper()
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
		for _, m := range msgs {
			if err := conn.WriteMessage(1, []byte(m)); err != nil {
				return
			}
		}
		buf := make([]byte, 64<<10)
		for {
			var err error
			if sink {
				_, err = conn.NetConn().Read(buf)
			} else {
				_, _, err = conn.ReadMessage()
			}
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// TestClientWithoutAudio: with WithAudio(false) the client reads media messages on its fast
// path, counting their audio and emitting no events, and judges bad ones as it does with
// audio events on.
func TestClientWithoutAudio(t *testing.T) {
	audio := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 480))
	media := func(sid, payload string) string {
		return `{"event":"media","streamSid":"` + sid + `","media":{"payload":"` + payload + `"}}`
	}
	for _, tc := range []struct {
		name     string
		msgs     []string
		received uint64
		err      string
	}{
		{"media", []string{media("MZ1", audio), media("MZ1", audio)}, 960, ""},
		{"escaped", []string{strings.Replace(media("MZ1", audio), "//", `\/\/`, 1)}, 480, ""},
		{"other field order", []string{`{"streamSid":"MZ1","event":"media","media":{"payload":"` + audio + `"}}`}, 480, ""},
		{"with a mark", []string{media("MZ1", audio), `{"event":"mark","streamSid":"MZ1","mark":{"name":"welcome"}}`}, 480, ""},
		{"bad base64", []string{media("MZ1", "!!!!")}, 0, "not base64 audio"},
		{"empty payload", []string{media("MZ1", "")}, 0, "not base64 audio"},
		{"another stream", []string{media("MZ2", audio)}, 0, `streamSid "MZ2"`},
		{"bad JSON", []string{media("MZ1", audio) + "}"}, 0, "bad JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := append(tc.msgs, `{"event":"mark","streamSid":"MZ1","mark":{"name":"end"}}`)
			for _, withAudio := range []bool{false, true} {
				cl, err := Dial(context.Background(), playServer(t, msgs, false), CallParams{StreamSid: "MZ1"}, WithAudio(withAudio))
				if err != nil {
					t.Fatal(err)
				}
				var kinds []string
				var errText string
				timeout := time.After(5 * time.Second)
			wait:
				for {
					select {
					case ev := <-cl.Events():
						kinds = append(kinds, ev.Kind)
						if ev.Kind == "error" {
							errText = ev.Err.Error()
							break wait
						}
						if ev.Kind == "played" && ev.Mark == "end" {
							break wait
						}
					case <-timeout:
						t.Fatalf("audio %v: no end mark; events %v", withAudio, kinds)
					}
				}
				_ = cl.Close()
				for ev := range cl.Events() {
					kinds = append(kinds, ev.Kind)
				}
				if got := cl.Received(); got != tc.received {
					t.Errorf("audio %v: received %d samples, want %d", withAudio, got, tc.received)
				}
				if (tc.err == "") != (errText == "") || !strings.Contains(errText, tc.err) {
					t.Errorf("audio %v: error %q, want one containing %q", withAudio, errText, tc.err)
				}
				if slices.Contains(kinds, "media") != (withAudio && tc.received > 0) {
					t.Errorf("audio %v: events %v", withAudio, kinds)
				}
			}
		})
	}
}

// TestClientSendAllocs: sending caller audio allocates nothing per frame.
func TestClientSendAllocs(t *testing.T) {
	cl, err := Dial(context.Background(), playServer(t, nil, true), CallParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	frame := bytes.Repeat([]byte{media.UlawSilence}, media.FrameSamples)
	if err := cl.SendAudio(frame); err != nil { // the buffers grow once
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(200, func() {
		if err := cl.SendAudio(frame); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("%v allocations per frame sent, want 0", allocs)
	}
}

// BenchmarkClientSendFrame measures the simulated platform sending one 20 ms media message
// over loopback (JSON by hand, base64, a masked frame, one write), as `callproof load` does
// fifty times a second per call.
func BenchmarkClientSendFrame(b *testing.B) {
	cl, err := Dial(context.Background(), playServer(b, nil, true), CallParams{})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	frame := bytes.Repeat([]byte{media.UlawSilence}, media.FrameSamples)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := cl.SendAudio(frame); err != nil {
			b.Fatal(err)
		}
	}
}
