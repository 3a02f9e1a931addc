package wsaudio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/resample"
	"github.com/callproof/callproof/media/wsaudio/wsaudiotest"
)

// testProto is a minimal platform: {"rate":8000,"id":"x"} first, then {"digit":"5"} or
// {"ack":N}. Marks are {"mark":"name","seq":N} when native, clear is {"clear":true}.
type testProto struct{}

func (testProto) Start(msg []byte) (Begin, error) {
	var m struct {
		Rate int    `json:"rate"`
		ID   string `json:"id"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return Begin{}, Violate(CloseInvalid, "bad JSON")
	}
	return Begin{Start: &media.Start{CallID: m.ID}, Rate: m.Rate}, nil
}

func (testProto) Control(msg []byte) (Control, error) {
	var m struct {
		Digit string `json:"digit"`
		Ack   uint64 `json:"ack"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return Control{}, Violate(CloseInvalid, "bad JSON")
	}
	if m.Ack != 0 {
		return Control{Kind: ControlAck, Ack: m.Ack}, nil
	}
	if d, ok := Digit(m.Digit); ok {
		return Control{Kind: ControlDigit, Digit: d}, nil
	}
	return Control{}, Violate(ClosePolicy, "unknown message")
}

var errTestPlay = errors.New("test: invalid play")

func testOutput(native bool, lead time.Duration, frames int) Output {
	o := Output{
		Wire:    func(c *media.Clip, rate int) *Wire { return BinaryWire(c, rate, frames) },
		Clear:   []byte(`{"clear":true}`),
		Bye:     []byte(`{"bye":true}`),
		MaxLead: lead,
	}
	if native {
		o.Mark = func(dst []byte, id uint64, name string) []byte {
			return fmt.Appendf(dst, `{"mark":%q,"seq":%d}`, name, id)
		}
	}
	return o
}

// recorder is a ToneDetector that keeps every sample it is given.
type recorder struct {
	mu  sync.Mutex
	pcm []int16
}

func (r *recorder) Process(dst []byte, pcm []int16) []byte {
	r.mu.Lock()
	r.pcm = append(r.pcm, pcm...)
	r.mu.Unlock()
	return dst
}

func (r *recorder) samples() []int16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pcm)
}

type rig struct {
	srv  *wsaudiotest.Server
	legs <-chan media.Leg
	rec  *recorder
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	r := &rig{rec: &recorder{}}
	cfg.Transport = "test"
	cfg.Protocol = testProto{}
	cfg.InvalidPlay = errTestPlay
	if cfg.ReadLimit == 0 {
		cfg.ReadLimit = 64 << 10
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = wsaudiotest.Wait
	}
	cfg.DTMF = media.DTMFAuto
	cfg.NewDetector = func(rate int) media.ToneDetector {
		if rate != media.SampleRate {
			t.Errorf("NewDetector(%d), want %d", rate, media.SampleRate)
		}
		return r.rec
	}
	serve, legs := wsaudiotest.Legs()
	r.legs = legs
	r.srv = wsaudiotest.NewServer(t, NewHandler(HandlerConfig{Leg: cfg}, serve, zaptest.NewLogger(t)))
	return r
}

func testText(c *Client, msg []byte) error {
	var m struct {
		Mark  string `json:"mark"`
		Seq   uint64 `json:"seq"`
		Clear bool   `json:"clear"`
		Bye   bool   `json:"bye"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return err
	}
	switch {
	case m.Clear:
		return c.Cleared(nil)
	case m.Bye:
		return nil
	case m.Seq != 0:
		return c.Mark(m.Mark, fmt.Appendf(nil, `{"ack":%d}`, m.Seq))
	}
	return fmt.Errorf("%w: unexpected %s", media.ErrProtocol, msg)
}

func (r *rig) dial(t *testing.T, rate int, opts ...ClientOption) (*Client, media.Leg) {
	t.Helper()
	c, err := Dial(context.Background(), r.srv.WS("/"), ClientSpec{
		Transport: "test", First: fmt.Appendf(nil, `{"rate":%d,"id":"T1"}`, rate), Rate: rate, BinaryRate: rate,
		Text: testText, Rejected: errors.New("rejected"), Closed: errors.New("closed"),
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	leg := wsaudiotest.Leg(t, r.legs)
	if ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait); ev.Type != media.EventStart || ev.Start.CallID != "T1" || ev.Start.Transport != "test" {
		t.Fatalf("first event %+v", ev)
	}
	return c, leg
}

func noise(n int, seed uint64) []int16 {
	r := rand.New(rand.NewPCG(seed, 2))
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(r.IntN(20000) - 10000)
	}
	return pcm
}

// TestInboundReframing: binary messages of any even size are reassembled into 20 ms frames;
// 16 kHz audio reaches the receiver as resample.Down of it.
func TestInboundReframing(t *testing.T) {
	for _, rate := range []int{8000, 16000} {
		t.Run(strconv.Itoa(rate), func(t *testing.T) {
			r := newRig(t, Config{Output: testOutput(true, 0, 1)})
			c, leg := r.dial(t, rate)
			wire := noise(rate/50*7, 5) // seven frames at the wire rate
			b := AppendL16(nil, wire)
			for _, n := range []int{2, 100, 538, 4, 1000} {
				if err := c.conn.WriteMessage(2, b[:min(n, len(b))]); err != nil {
					t.Fatal(err)
				}
				b = b[min(n, len(b)):]
			}
			if err := c.conn.WriteMessage(2, b); err != nil {
				t.Fatal(err)
			}
			c.Close()
			wsaudiotest.Drain(leg)
			want := wire
			if rate == 16000 {
				var d resample.Down
				want = d.Process(nil, wire)
			}
			if got := r.rec.samples(); !slices.Equal(got, want) {
				t.Errorf("receiver got %d samples, want the %d sent (converted to 8 kHz)", len(got), len(want))
			}
		})
	}
}

// TestEmulatedMarks: without native marks, a prompt's mark comes when the playback clock has
// passed its end.
func TestEmulatedMarks(t *testing.T) {
	r := newRig(t, Config{Output: testOutput(false, time.Second, 5)})
	_, leg := r.dial(t, 8000)
	clip := wsaudiotest.Tone(t, "p", 440, 300*time.Millisecond)
	began := time.Now()
	if err := leg.Play(clip, "p"); err != nil {
		t.Fatal(err)
	}
	ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait)
	if ev.Type != media.EventMark || ev.Mark != "p" || !ev.Played {
		t.Fatalf("got %+v, want mark p played", ev)
	}
	if el := time.Since(began); el < 280*time.Millisecond {
		t.Errorf("mark after %s, before the 300 ms prompt could have played", el)
	}
}

// TestPacing: with MaxLead, a long prompt goes out no faster than real time once the lead is
// used up.
func TestPacing(t *testing.T) {
	r := newRig(t, Config{Output: testOutput(true, 200*time.Millisecond, 1)})
	c, leg := r.dial(t, 16000)
	clip := wsaudiotest.Tone(t, "p", 440, time.Second)
	began := time.Now()
	if err := leg.Play(clip, "p"); err != nil {
		t.Fatal(err)
	}
	got := wsaudiotest.Audio(t, c.Events(), len(clip.PCM()), wsaudiotest.Wait)
	if el := time.Since(began); el < 700*time.Millisecond {
		t.Errorf("1 s prompt with 200 ms lead sent in %s", el)
	}
	if !slices.Equal(got, clip.PCM()) {
		t.Error("prompt samples changed on the way")
	}
}

// TestClearOrdering: Clear settles, in order, the mark of the prompt playing, of prompts
// queued before it, and lets prompts queued after it play.
func TestClearOrdering(t *testing.T) {
	for _, native := range []bool{true, false} {
		t.Run(fmt.Sprint("native=", native), func(t *testing.T) {
			r := newRig(t, Config{Output: testOutput(native, 100*time.Millisecond, 1)})
			c, leg := r.dial(t, 8000, WithRealtime(true))
			long := wsaudiotest.Tone(t, "a", 440, wsaudiotest.Long)
			short := wsaudiotest.Tone(t, "c", 440, 40*time.Millisecond)
			for _, m := range []string{"a", "b"} {
				if err := leg.Play(long, m); err != nil {
					t.Fatal(err)
				}
			}
			wsaudiotest.Audio(t, c.Events(), media.FrameSamples, wsaudiotest.Wait)
			if err := leg.Clear(); err != nil {
				t.Fatal(err)
			}
			if err := leg.Play(short, "c"); err != nil {
				t.Fatal(err)
			}
			for _, want := range []struct {
				mark   string
				played bool
			}{{"a", false}, {"b", false}, {"c", true}} {
				ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait)
				if ev.Type != media.EventMark || ev.Mark != want.mark || ev.Played != want.played {
					t.Fatalf("got %+v, want mark %s played=%v", ev, want.mark, want.played)
				}
			}
		})
	}
}

// TestLateAck: an acknowledgement of a mark a clear already settled is ignored.
func TestLateAck(t *testing.T) {
	r := newRig(t, Config{Output: testOutput(true, 0, 50)})
	c, leg := r.dial(t, 8000, WithRealtime(true))
	long := wsaudiotest.Tone(t, "a", 440, wsaudiotest.Long)
	if err := leg.Play(long, "a"); err != nil {
		t.Fatal(err)
	}
	wsaudiotest.Audio(t, c.Events(), len(long.PCM()), wsaudiotest.Wait) // the notify follows at once
	if err := leg.Clear(); err != nil {
		t.Fatal(err)
	}
	if ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait); ev.Mark != "a" || ev.Played {
		t.Fatalf("got %+v, want mark a not played", ev)
	}
	if err := c.SendText([]byte(`{"ack":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.SendText([]byte(`{"digit":"7"}`)); err != nil {
		t.Fatal(err)
	}
	if ev := wsaudiotest.Next(t, leg, wsaudiotest.Wait); ev.Type != media.EventDTMF || ev.Digit != '7' {
		t.Fatalf("got %+v after a late ack, want the call to go on", ev)
	}
	if s := leg.(*Leg).Stats(); s.LateAcks != 1 || s.Clears != 1 {
		t.Errorf("stats %+v, want one late ack and one clear", s)
	}
}

func TestPlayErrors(t *testing.T) {
	r := newRig(t, Config{Output: testOutput(true, 0, 1)})
	c, leg := r.dial(t, 8000)
	clip := wsaudiotest.Tone(t, "a", 440, 20*time.Millisecond)
	for _, tc := range []struct {
		clip *media.Clip
		mark string
	}{{nil, "a"}, {clip, ""}, {clip, string(make([]byte, MaxMarkName+1))}, {clip, "\xff"}} {
		if err := leg.Play(tc.clip, tc.mark); !errors.Is(err, errTestPlay) {
			t.Errorf("Play(%v, %q) = %v, want the invalid-play error", tc.clip != nil, tc.mark, err)
		}
	}
	if err := leg.Hangup("bye"); err != nil {
		t.Fatal(err)
	}
	if ev := wsaudiotest.NextSim(t, c.Events(), true, wsaudiotest.Wait); ev.Kind != media.SimClosed || ev.Reason != "bye" {
		t.Fatalf("client got %+v", ev)
	}
	if err := leg.Play(clip, "a"); !errors.Is(err, media.ErrLegClosed) {
		t.Errorf("Play after hangup = %v", err)
	}
	if err := leg.Clear(); !errors.Is(err, media.ErrLegClosed) {
		t.Errorf("Clear after hangup = %v", err)
	}
	if err := c.Err(); err != nil {
		t.Errorf("server broke the protocol: %v", err)
	}
}

func TestSubprotocolAndAuth(t *testing.T) {
	serve, legs := wsaudiotest.Legs()
	out := testOutput(false, 0, 1)
	out.Bye = nil
	srv := wsaudiotest.NewServer(t, NewHandler(HandlerConfig{
		Leg:         Config{Transport: "test", Protocol: testProto{}, Output: out, ReadLimit: 4096, StartTimeout: time.Second},
		Subprotocol: "audio.test.org",
		Authorize:   func(r *http.Request) error { return CheckBasic(r, "u", "p") },
		Realm:       "callproof",
	}, serve, zaptest.NewLogger(t)))
	basic := func(u, p string) http.Header {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header
	}
	first := []wsaudiotest.Frame{wsaudiotest.Text(`{"rate":8000,"id":"x"}`)}
	if code, _ := wsaudiotest.RawCall(t, srv.WS("/"), "audio.test.org", basic("u", "x"), first); code != -401 {
		t.Errorf("wrong password: %d, want HTTP 401", code)
	}
	if code, _ := wsaudiotest.RawCall(t, srv.WS("/"), "", basic("u", "p"), first); code != -400 {
		t.Errorf("no subprotocol: %d, want HTTP 400", code)
	}
	if code, _ := wsaudiotest.RawCall(t, srv.WS("/"), "audio.other.org", basic("u", "p"), first); code != -400 {
		t.Errorf("other subprotocol: %d, want HTTP 400", code)
	}
	go func() {
		leg := <-legs
		_ = leg.Hangup("ok")
	}()
	if code, reason := wsaudiotest.RawCall(t, srv.WS("/"), "audio.test.org", basic("u", "p"), first); code != 1000 || reason != "ok" {
		t.Errorf("good call closed with %d %q", code, reason)
	}
}

func TestCheckToken(t *testing.T) {
	const tok = "s3cr3t-token-0123"
	for _, tc := range []struct {
		target, auth string
		ok           bool
	}{
		{"/v1/x/" + tok, "", true},
		{"/v1/x?token=" + tok, "", true},
		{"/v1/x", "Bearer " + tok, true},
		{"/v1/x", "bearer " + tok, true},
		{"/v1/x", "", false},
		{"/v1/x/" + tok + "/more", "", false},
		{"/v1/x", "Bearer " + tok + "x", false},
		{"/v1/x", "Basic " + tok, false},
	} {
		r, _ := http.NewRequest("GET", "http://h"+tc.target, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if err := CheckToken(r, tok); (err == nil) != tc.ok {
			t.Errorf("%s %q: %v, want ok=%v", tc.target, tc.auth, err, tc.ok)
		}
	}
}
