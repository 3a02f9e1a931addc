package telnyx

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsjson"
)

// startedLeg returns a leg with no connection that has accepted connected and start (with
// encoding enc), for driving handle directly.
func startedLeg(t testing.TB, cfg Config, enc string) *Leg {
	t.Helper()
	c := cfg.withDefaults()
	l := newLeg(nil, &c, nil)
	for _, m := range []string{msgConnected, strings.Replace(msgStart, `"PCMU"`, strconv.Quote(enc), 1)} {
		if err := l.handle([]byte(m)); err != nil {
			t.Fatalf("handle(%s): %v", m, err)
		}
	}
	return l
}

// TestInboundFrameAllocs: handling an inbound media, dtmf or mark message allocates nothing,
// in order or out of order, whatever the codec.
func TestInboundFrameAllocs(t *testing.T) {
	l16 := base64.StdEncoding.EncodeToString(make([]byte, 320))
	for _, tc := range []struct {
		name, enc string
		cfg       Config
		msgs      func(i int) string
	}{
		{"media", "PCMU", Config{}, func(i int) string { return mediaMsg("2", strconv.Itoa(i), silence160) }},
		{"media out of order", "PCMU", Config{}, func(i int) string { return mediaMsg("2", strconv.Itoa(i^1), silence160) }},
		{"media with detector", "PCMA", Config{NewDetector: func() media.ToneDetector { return &quiet{} }},
			func(i int) string { return mediaMsg("2", strconv.Itoa(i), silence160) }},
		{"media L16", "L16", Config{}, func(i int) string { return mediaMsg("2", strconv.Itoa(i), l16) }},
		{"media with escapes", "PCMU", Config{}, func(i int) string {
			return strings.Replace(mediaMsg("2", strconv.Itoa(i), silence160), "//", `\/\/`, 4)
		}},
		{"dtmf", "PCMU", Config{}, func(int) string {
			return `{"event":"dtmf","sequence_number":"9","stream_id":"S1","dtmf":{"digit":"5"}}`
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := startedLeg(t, tc.cfg, tc.enc)
			const n = 500
			msgs := make([][]byte, 2*n+2)
			for i := range msgs {
				msgs[i] = []byte(tc.msgs(i + 1))
			}
			for _, m := range msgs[:n] { // buffers grow to the frame size
				if err := l.handle(m); err != nil {
					t.Fatal(err)
				}
			}
			i := n
			var err error
			allocs := testing.AllocsPerRun(n, func() {
				if e := l.handle(msgs[i]); e != nil {
					err = e
				}
				i++
			})
			if err != nil {
				t.Fatal(err)
			}
			if allocs != 0 {
				t.Errorf("%v allocations per frame, want 0", allocs)
			}
		})
	}
	t.Run("mark", func(t *testing.T) {
		l := startedLeg(t, Config{}, "PCMU")
		msg := []byte(`{"event":"mark","sequence_number":"9","mark":{"name":"welcome"}}`)
		q := l.s.Marks()
		q.Sent("welcome", false)
		if err := l.handle(msg); err != nil {
			t.Fatal(err)
		}
		var err error
		allocs := testing.AllocsPerRun(100, func() {
			q.Sent("welcome", false) // the string is shared; the queue's array has grown
			if e := l.handle(msg); e != nil {
				err = e
			}
			<-l.Events()
		})
		if err != nil {
			t.Fatal(err)
		}
		if allocs != 0 {
			t.Errorf("%v allocations per mark echo, want 0", allocs)
		}
	})
}

// sink records what the jitter buffer releases: each frame's first sample is its chunk.
type sink struct{ got []int }

func (s *sink) Audio(pcm []int16) { s.got = append(s.got, int(pcm[0])) }

// TestJitter: frames come out in chunk order whatever order they arrive in, within the
// buffer's window; holes are given up once the window moves past them; late and repeated
// frames are dropped.
func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		name             string
		in               []int
		flush            bool
		out              []int
		gaps, reord, lat uint64
	}{
		{"in order", []int{1, 2, 3, 4, 5, 6}, false, []int{1, 2, 3, 4, 5, 6}, 0, 0, 0},
		{"primes before releasing", []int{1, 2}, false, nil, 0, 0, 0},
		{"flush releases the primer", []int{1, 2}, true, []int{1, 2}, 0, 0, 0},
		{"swapped pairs", []int{2, 1, 4, 3, 6, 5, 8, 7}, true, []int{1, 2, 3, 4, 5, 6, 7, 8}, 0, 4, 0},
		{"reversed threes", []int{3, 2, 1, 6, 5, 4, 9, 8, 7, 10}, false, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0, 6, 0},
		{"starts at any number", []int{41, 40, 42, 43}, false, []int{40, 41, 42, 43}, 0, 1, 0},
		{"late beyond the window", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 2}, false, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0, 0, 1},
		{"duplicate", []int{1, 2, 3, 3, 4}, false, []int{1, 2, 3, 4}, 0, 0, 1},
		{"duplicate held", []int{1, 2, 3, 5, 5, 4}, false, []int{1, 2, 3, 4, 5}, 0, 1, 1},
		{"hole given up", []int{1, 2, 3, 5, 6, 7, 8, 9, 10}, false, []int{1, 2, 3, 5, 6, 7, 8, 9, 10}, 1, 0, 0},
		{"hole filled late", []int{1, 2, 3, 5, 6, 7, 8, 9, 10, 4}, false, []int{1, 2, 3, 5, 6, 7, 8, 9, 10}, 1, 0, 1},
		{"run of holes counts once", []int{1, 2, 3, 7, 8, 9, 10, 11, 12}, false, []int{1, 2, 3, 7, 8, 9, 10, 11, 12}, 1, 0, 0},
		{"two holes", []int{1, 2, 3, 5, 6, 8, 9, 10, 11, 12, 13}, false, []int{1, 2, 3, 5, 6, 8, 9, 10, 11, 12, 13}, 2, 0, 0},
		{"big jump", []int{1, 2, 3, 30000, 30001, 30002}, true, []int{1, 2, 3, 30000, 30001, 30002}, 1, 0, 0},
		{"flush with a hole", []int{1, 2, 3, 5, 7}, true, []int{1, 2, 3, 5, 7}, 2, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gaps atomicCounter
			s := &sink{}
			j := &jitter{sink: s, gaps: &gaps.Uint64}
			for _, c := range tc.in {
				j.push(uint64(c), wsjson.L16, []byte{byte(c >> 8), byte(c)})
			}
			if tc.flush {
				j.flush()
			}
			if !slices.Equal(s.got, tc.out) {
				t.Errorf("released %v, want %v", s.got, tc.out)
			}
			if g, r, l := gaps.Load(), j.reordered.Load(), j.late.Load(); g != tc.gaps || r != tc.reord || l != tc.lat {
				t.Errorf("gaps %d reordered %d late %d, want %d %d %d", g, r, l, tc.gaps, tc.reord, tc.lat)
			}
		})
	}
}

// TestStopFlushesJitter: audio held for re-ordering when "stop" comes still reaches the
// receiver, in order.
func TestStopFlushesJitter(t *testing.T) {
	rx := &tap{}
	l := startedLeg(t, Config{NewDetector: func() media.ToneDetector { return rx }}, "L16")
	for _, c := range []int{2, 1} {
		payload := base64.StdEncoding.EncodeToString([]byte{0, byte(c)})
		if err := l.handle([]byte(mediaMsg("2", strconv.Itoa(c), payload))); err != nil {
			t.Fatal(err)
		}
	}
	if got := rx.samples(); len(got) != 0 {
		t.Fatalf("released %v while priming", got)
	}
	if err := l.handle([]byte(`{"event":"stop","sequence_number":"4","stop":{}}`)); err != nil {
		t.Fatal(err)
	}
	if got := rx.samples(); !slices.Equal(got, []int16{1, 2}) {
		t.Errorf("receiver got %v, want [1 2]", got)
	}
}

// TestStartMapping: how start's fields, custom_parameters and client_state become media.Start.
func TestStartMapping(t *testing.T) {
	state := func(m map[string]string) string { return ClientState(m) }
	for _, tc := range []struct {
		name  string
		start string // the start object's members after call_control_id
		want  media.Start
	}{
		{"plain", `"from":"+1","to":"+2","custom_parameters":{"request":"delete","lang":"es-US"}`,
			media.Start{From: "+1", To: "+2", Params: map[string]string{"request": "delete", "lang": "es-US"}}},
		{"client state", `"client_state":"` + state(map[string]string{"account": "4", "lang": "en-US"}) + `"`,
			media.Start{Params: map[string]string{"account": "4", "lang": "en-US"}}},
		{"custom parameters win", `"client_state":"` + state(map[string]string{"lang": "en-US"}) + `","custom_parameters":{"lang":"es-US"}`,
			media.Start{Params: map[string]string{"lang": "es-US"}}},
		{"operator's own client state", `"client_state":"aGF2ZSBhIG5pY2UgZGF5ID1d"`, media.Start{Params: map[string]string{}}},
		{"client state not base64", `"client_state":"%%%"`, media.Start{Params: map[string]string{}}},
		{"numbers from parameters when start has none", `"custom_parameters":{"from":"+1","to":"+2"}`,
			media.Start{From: "+1", To: "+2", Params: map[string]string{}}},
		{"start's numbers win", `"from":"+1","custom_parameters":{"from":"+9"}`, media.Start{From: "+1", Params: map[string]string{}}},
		{"verstat as given", `"custom_parameters":{"verstat":"TN-Validation-Passed-B","shaken_stir_validated":"false"}`,
			media.Start{Verstat: "TN-Validation-Passed-B", Params: map[string]string{}}},
		{"shaken passed", `"custom_parameters":{"shaken_stir_attestation":"a","shaken_stir_validated":"true"}`,
			media.Start{Verstat: "TN-Validation-Passed-A", Params: map[string]string{}}},
		{"shaken failed", `"client_state":"` + state(map[string]string{"shaken_stir_attestation": "C", "shaken_stir_validated": "false"}) + `"`,
			media.Start{Verstat: "TN-Validation-Failed-C", Params: map[string]string{}}},
		{"shaken without level", `"custom_parameters":{"shaken_stir_validated":"true"}`,
			media.Start{Verstat: "TN-Validation-Passed", Params: map[string]string{}}},
		{"shaken level only", `"custom_parameters":{"shaken_stir_attestation":"A"}`, media.Start{Params: map[string]string{}}},
		{"nulls", `"from":null,"client_state":null,"custom_parameters":null,"tags":["a"]`, media.Start{Params: map[string]string{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{}.withDefaults()
			l := newLeg(nil, &c, nil)
			msg := `{"event":"start","sequence_number":"1","stream_id":"S1","start":{"call_control_id":"v3:C1",` + tc.start + `}}`
			if err := l.handle([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			got, want := l.Start(), tc.want
			want.CallID, want.StreamID, want.Transport = "v3:C1", "S1", "telnyx"
			if got.CallID != want.CallID || got.StreamID != want.StreamID || got.Transport != want.Transport ||
				got.From != want.From || got.To != want.To || got.Verstat != want.Verstat || !maps.Equal(got.Params, want.Params) {
				t.Errorf("start = %+v, want %+v", *got, want)
			}
		})
	}
}

// FuzzInbound feeds arbitrary messages to the inbound parser, both as the message after
// "connected" (exercising start) and after a full start. It must not panic; whatever it
// rejects must be a protocol violation with one of the four close codes and a reason that fits
// a close frame; whatever it accepts must be valid JSON. Seeds are in testdata/fuzz/FuzzInbound.
func FuzzInbound(f *testing.F) {
	for _, s := range []string{msgConnected, msgStart, mediaMsg("2", "1", silence160),
		`{"event":"dtmf","sequence_number":"9","stream_id":"S1","occurred_at":"2026-03-02T10:11:12.345Z","dtmf":{"digit":"7"}}`,
		`{"event":"mark","sequence_number":"12","stream_id":"S1","mark":{"name":"welcome"}}`,
		`{"event":"error","stream_id":"S1","payload":{"code":100003,"title":"malformed_frame","detail":"x"}}`,
		`{"event":"stop","sequence_number":"300","stream_id":"S1","stop":{"user_id":"U1","call_control_id":"v3:C1"}}`} {
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
			if r := wsjson.TruncReason(v.Reason); len(r) > wsjson.MaxCloseReason {
				t.Fatalf("reason too long")
			}
		}
		c := Config{}.withDefaults()
		fresh := newLeg(nil, &c, nil)
		if err := fresh.handle([]byte(msgConnected)); err != nil {
			t.Fatal(err)
		}
		check(fresh)
		for _, enc := range []string{"PCMU", "L16"} {
			l := startedLeg(t, Config{}, enc)
			l.s.Marks().Sent("welcome", false)
			check(l)
		}
	})
}

func BenchmarkInboundFrame(b *testing.B) {
	for _, tc := range []struct {
		name  string
		chunk func(i int) int
	}{{"in order", func(i int) int { return i }}, {"swapped pairs", func(i int) int { return i ^ 1 }}} {
		b.Run(tc.name, func(b *testing.B) {
			l := startedLeg(b, Config{}, "PCMU")
			const n = 1024
			msgs := make([][]byte, n)
			for i := range msgs {
				msgs[i] = []byte(mediaMsg("2", strconv.Itoa(tc.chunk(i+2)), silence160))
			}
			b.SetBytes(int64(len(msgs[0])))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == n { // start a fresh chunk sequence, keeping the slots' buffers
					for k := range l.jit.slots {
						l.jit.slots[k].full = false
					}
					l.jit.begun, l.jit.live, l.jit.held = false, false, 0
					i = 0
				}
				if err := l.handle(msgs[i]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
