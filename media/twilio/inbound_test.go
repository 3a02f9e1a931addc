package twilio

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsjson"
)

// startedLeg returns a leg with no connection that has accepted connected and start, for
// driving handle directly.
func startedLeg(t testing.TB, cfg Config) *Leg {
	t.Helper()
	c := cfg.withDefaults()
	l := newLeg(nil, &c, nil)
	for _, m := range []string{msgConnected, msgStart} {
		if err := l.handle([]byte(m)); err != nil {
			t.Fatalf("handle(%s): %v", m, err)
		}
	}
	return l
}

// quietDetector is a ToneDetector that looks at every sample and finds nothing, without
// allocating.
type quietDetector struct{ sum int }

func (d *quietDetector) Process(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		d.sum += int(s)
	}
	return dst
}

// TestInboundFrameAllocs: handling an inbound media or dtmf message allocates nothing.
func TestInboundFrameAllocs(t *testing.T) {
	escaped := strings.Replace(mediaMsg("2", silence160), "//", `\/\/`, 4) // forces the unescape path
	for _, tc := range []struct {
		name string
		cfg  Config
		msg  string
	}{
		{"media", Config{}, mediaMsg("2", silence160)},
		{"media with detector", Config{NewDetector: func() media.ToneDetector { return &quietDetector{} }}, mediaMsg("2", silence160)},
		{"media with escapes", Config{}, escaped},
		{"dtmf", Config{}, `{"event":"dtmf","sequenceNumber":"2","streamSid":"MZ1","dtmf":{"track":"inbound_track","digit":"5"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := startedLeg(t, tc.cfg)
			msg := []byte(tc.msg)
			var err error
			allocs := testing.AllocsPerRun(1000, func() {
				l.lastSeq = 1 // the same message again is the next one
				if e := l.handle(msg); e != nil {
					err = e
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if allocs != 0 {
				t.Errorf("%v allocations per frame, want 0", allocs)
			}
		})
	}
}

// TestInboundMediaDecoded: the payload reaches the receiver as decoded PCM, gaps in the
// timestamps are counted, and media on another track is dropped.
func TestInboundMediaDecoded(t *testing.T) {
	tap := &pcmTap{}
	l := startedLeg(t, Config{NewDetector: func() media.ToneDetector { return tap }})
	msgs := []string{
		mediaMsg("2", "AAECAw=="), // 0x00 0x01 0x02 0x03 at t=0
		strings.Replace(mediaMsg("3", "gA=="), `"timestamp":"0"`, `"timestamp":"1"`, 1),   // contiguous
		strings.Replace(mediaMsg("4", "/w=="), `"timestamp":"0"`, `"timestamp":"500"`, 1), // a gap
		strings.Replace(mediaMsg("5", "/w=="), `"inbound"`, `"outbound"`, 1),
	}
	for _, m := range msgs {
		if err := l.handle([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	want := media.DecodeUlaw(make([]int16, 6), []byte{0, 1, 2, 3, 0x80, 0xff})
	if got := tap.samples(); len(got) != len(want) || got[0] != want[0] || got[4] != want[4] || got[5] != want[5] {
		t.Errorf("samples %v, want %v", got, want)
	}
	if s := l.Stats(); s.FramesIn != 3 || s.Gaps != 1 || s.Drops != 1 {
		t.Errorf("stats %+v, want 3 frames in, 1 gap, 1 drop", s)
	}
}

// TestMarkFIFO: echoes match the marks sent; those pending at a clear come back unplayed.
func TestMarkFIFO(t *testing.T) {
	l := startedLeg(t, Config{})
	<-l.Events() // start
	q := l.s.Marks()
	q.Sent("welcome", false)
	q.Sent("ask_pin", true)
	q.Sent("welcome", false)
	for i, name := range []string{"welcome", "ask_pin", "welcome"} {
		msg := `{"event":"mark","sequenceNumber":"` + string(rune('2'+i)) + `","mark":{"name":"` + name + `"}}`
		if err := l.handle([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		ev := <-l.Events()
		if ev.Type != media.EventMark || ev.Mark != name || ev.Played != (name != "ask_pin") {
			t.Errorf("echo %d: %+v", i, ev)
		}
	}
	if n := q.Len(); n != 0 {
		t.Errorf("%d marks left", n)
	}
}

// TestScanner checks the JSON scanner against encoding/json on valid and invalid texts.
func TestScanner(t *testing.T) {
	for _, in := range []string{
		`{}`, ` { "a" : [ 1 , -2.5e+3 , true , false , null , "x\"y\\u00e9\ud83d\ude00" , { } , [ ] ] } `,
		`{"a":0}`, `{"a":-0.0}`, `{"a":1E9}`, `{"a":"\/"}`,
		`{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`,
		`{"a":tru}`, `{"a":nul}`, `{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\t\"}", `{"a":[1 2]}`,
		`{"a":"unterminated}`, `{"a":1} x`, `{"a":1}}`, `[1]`, `"s"`, ``, `   `,
	} {
		var s wsjson.Scanner
		s.Reset([]byte(in))
		got := s.Skip(0) == nil && s.End()
		if want := json.Valid([]byte(in)); got != want {
			t.Errorf("scanner(%q) valid=%v, encoding/json says %v", in, got, want)
		}
	}
	// Strings unescape as encoding/json does.
	for _, in := range []string{`"plain"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\u4e2d"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ude00\ud83d\ude00"`} {
		var s wsjson.Scanner
		s.Reset([]byte(in))
		got, err := s.Str()
		var want string
		if jerr := json.Unmarshal([]byte(in), &want); jerr != nil || err != nil {
			t.Errorf("%s: scanner err %v, json err %v", in, err, jerr)
			continue
		}
		if string(got) != want {
			t.Errorf("%s: scanner %q, encoding/json %q", in, got, want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, in := range []string{"", "welcome", `a"b\c`, "tab\tnl\ncr\r\x01\x1f", "é中😀", "bad\xffutf8", "<&>"} {
		var got, want string
		if err := json.Unmarshal(wsjson.AppendString(nil, in), &got); err != nil {
			t.Errorf("%q: output is not JSON: %v", in, err)
		}
		b, _ := json.Marshal(in)
		_ = json.Unmarshal(b, &want)
		if got != want {
			t.Errorf("%q: round trip %q, encoding/json %q", in, got, want)
		}
	}
}

// FuzzInbound feeds arbitrary messages to the inbound parser, both as the message after
// "connected" (exercising start) and after a full start. It must not panic; whatever it
// rejects must be a protocol violation with one of the four close codes; whatever it accepts
// must be valid JSON. Seeds are in testdata/fuzz/FuzzInbound.
func FuzzInbound(f *testing.F) {
	for _, s := range []string{msgConnected, msgStart, mediaMsg("2", silence160),
		`{"event":"dtmf","sequenceNumber":"2","streamSid":"MZ1","dtmf":{"track":"inbound_track","digit":"#"}}`,
		`{"event":"mark","sequenceNumber":"2","streamSid":"MZ1","mark":{"name":"welcome"}}`,
		`{"event":"stop","sequenceNumber":"2","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(l *Leg) {
			err := l.handle(data)
			if err == nil {
				if !json.Valid(data) {
					t.Fatalf("accepted invalid JSON %q", data)
				}
				return
			}
			var v *wsjson.Violation
			if !errors.As(err, &v) {
				t.Fatalf("error %v is not a protocol violation", err)
			}
			switch v.Code {
			case wsjson.CloseUnsupported, wsjson.CloseInvalid, wsjson.ClosePolicy, wsjson.CloseTooBig:
			default:
				t.Fatalf("close code %d for %q", v.Code, data)
			}
			if len(wsjson.TruncReason(v.Reason)) > wsjson.MaxCloseReason {
				t.Fatalf("reason too long")
			}
		}
		c := Config{}.withDefaults()
		fresh := newLeg(nil, &c, nil)
		if err := fresh.handle([]byte(msgConnected)); err != nil {
			t.Fatal(err)
		}
		check(fresh)
		l := startedLeg(t, Config{})
		l.s.Marks().Sent("welcome", false)
		check(l)

		var s wsjson.Scanner
		s.Reset(data)
		err := s.Skip(0)
		if got := err == nil && s.End(); !errors.Is(err, wsjson.ErrDepth) && got != json.Valid(data) {
			t.Fatalf("scanner valid=%v, encoding/json %v for %q", got, !got, data)
		}
	})
}

func BenchmarkInboundFrame(b *testing.B) {
	l := startedLeg(b, Config{})
	msg := []byte(mediaMsg("2", silence160))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		l.lastSeq = 1
		if err := l.handle(msg); err != nil {
			b.Fatal(err)
		}
	}
}
