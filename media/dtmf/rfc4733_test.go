package dtmf

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestEventRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		wire []byte
	}{
		{"digit 5 start", Event{Code: 5, Volume: 10, Duration: 0}, []byte{5, 10, 0, 0}},
		{"star end", Event{Code: 10, End: true, Volume: 10, Duration: 800}, []byte{10, 0x8a, 0x03, 0x20}},
		{"D max", Event{Code: 15, End: true, Volume: 63, Duration: 0xFFFF}, []byte{15, 0xbf, 0xff, 0xff}},
		{"flash", Event{Code: 16, Duration: 1600}, []byte{16, 0, 0x06, 0x40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ev.Marshal(); !bytes.Equal(got, tt.wire) {
				t.Fatalf("Marshal = % x, want % x", got, tt.wire)
			}
			got, err := ParseEvent(tt.wire)
			if err != nil || got != tt.ev {
				t.Fatalf("ParseEvent = %+v, %v; want %+v", got, err, tt.ev)
			}
		})
	}
	t.Run("reserved bit ignored", func(t *testing.T) {
		got, err := ParseEvent([]byte{1, 0x40 | 0x80 | 7, 0, 160})
		if err != nil || got != (Event{Code: 1, End: true, Volume: 7, Duration: 160}) {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	t.Run("short", func(t *testing.T) {
		if _, err := ParseEvent([]byte{1, 2, 3}); !errors.Is(err, ErrShortPayload) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("multiple reports", func(t *testing.T) {
		evs, err := ParseEvents(nil, []byte{1, 0x8a, 0, 160, 2, 10, 0, 80})
		if err != nil || len(evs) != 2 || evs[0].Code != 1 || !evs[0].End || evs[1].Code != 2 {
			t.Fatalf("got %+v, %v", evs, err)
		}
		if _, err := ParseEvents(nil, []byte{1, 0x8a, 0, 160, 2}); !errors.Is(err, ErrShortPayload) {
			t.Fatalf("ragged payload err = %v", err)
		}
	})
	t.Run("digits", func(t *testing.T) {
		for i := 0; i < 16; i++ {
			d, ok := Event{Code: uint8(i)}.Digit()
			c, ok2 := EventCode(d)
			if !ok || !ok2 || c != uint8(i) {
				t.Fatalf("code %d -> %q -> %d", i, d, c)
			}
		}
		if _, ok := (Event{Code: EventFlash}).Digit(); ok {
			t.Fatal("flash is not a digit")
		}
		if c, ok := EventCode('b'); !ok || c != 13 {
			t.Fatal("lower-case b")
		}
		if _, ok := EventCode('x'); ok {
			t.Fatal("x is not a digit")
		}
	})
}

// pkt is one telephone-event packet as it travels.
type pkt struct {
	h       Header
	payload []byte
	at      time.Time
}

// stream renders key presses as packets. Each press is (digit, duration, silence after).
type press struct {
	digit byte
	dur   time.Duration
	gap   time.Duration
}

func stream(t *testing.T, s Sender, ssrc uint32, t0 time.Time, presses ...press) []pkt {
	t.Helper()
	rate := s.ClockRate
	if rate == 0 {
		rate = 8000
	}
	var out []pkt
	ts := uint32(0xFFFF_F000) // exercise wrap-around
	at := t0
	seq := uint16(65530)
	for _, p := range presses {
		evs, err := s.Packets(nil, p.digit, p.dur)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			out = append(out, pkt{
				h:       Header{PayloadType: 101, SSRC: ssrc, SequenceNumber: seq, Timestamp: ts + e.Timestamp, Marker: e.Marker},
				payload: e.Event.AppendTo(nil),
				at:      at.Add(e.At),
			})
			seq++
		}
		span := p.dur + p.gap
		at = at.Add(span)
		ts += uint32(span.Seconds() * float64(rate))
	}
	return out
}

func TestReceiver(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := Sender{}
	one := func(t *testing.T) []pkt {
		return stream(t, s, 1, t0, press{'5', 100 * time.Millisecond, 100 * time.Millisecond})
	}
	tests := []struct {
		name    string
		cfg     ReceiverConfig
		packets func(t *testing.T) []pkt
		tick    time.Duration // Tick at last arrival + tick (0: no tick)
		want    string
		ended   []bool
		durs    []time.Duration
	}{
		{name: "one digit", packets: one, want: "5", ended: []bool{true}, durs: []time.Duration{100 * time.Millisecond}},
		{name: "first packets lost", packets: func(t *testing.T) []pkt { return one(t)[2:] }, want: "5", ended: []bool{true}},
		{name: "all end packets lost, closed by tick", packets: func(t *testing.T) []pkt { p := one(t); return p[:len(p)-3] },
			tick: 260 * time.Millisecond, want: "5", ended: []bool{false}, durs: []time.Duration{80 * time.Millisecond}},
		{name: "all end packets lost, no tick yet", packets: func(t *testing.T) []pkt { p := one(t); return p[:len(p)-3] },
			tick: 200 * time.Millisecond, want: ""},
		{name: "only end packets", packets: func(t *testing.T) []pkt { p := one(t); return p[len(p)-3:] }, want: "5", ended: []bool{true}},
		{name: "duplicated", packets: func(t *testing.T) []pkt {
			var out []pkt
			for _, p := range one(t) {
				out = append(out, p, p)
			}
			return out
		}, want: "5"},
		{name: "reordered", packets: func(t *testing.T) []pkt {
			p := one(t)
			p[1], p[3] = p[3], p[1]
			p[len(p)-1], p[len(p)-4] = p[len(p)-4], p[len(p)-1]
			return p
		}, want: "5", ended: []bool{true}, durs: []time.Duration{100 * time.Millisecond}},
		{name: "same digit twice quickly", packets: func(t *testing.T) []pkt {
			return stream(t, s, 1, t0, press{'1', 60 * time.Millisecond, 40 * time.Millisecond}, press{'1', 60 * time.Millisecond, 40 * time.Millisecond})
		}, want: "11"},
		{name: "same digit twice, first end lost", packets: func(t *testing.T) []pkt {
			p := stream(t, s, 1, t0, press{'1', 60 * time.Millisecond, 40 * time.Millisecond}, press{'1', 60 * time.Millisecond, 40 * time.Millisecond})
			return append(p[:3], p[6:]...)
		}, want: "11", ended: []bool{false, true}},
		{name: "all sixteen", packets: func(t *testing.T) []pkt {
			var ps []press
			for i := 0; i < 16; i++ {
				ps = append(ps, press{eventDigits[i], 80 * time.Millisecond, 70 * time.Millisecond})
			}
			return stream(t, s, 1, t0, ps...)
		}, want: eventDigits},
		{name: "flash ignored", packets: func(t *testing.T) []pkt {
			p := one(t)
			for i := range p {
				p[i].payload[0] = EventFlash
			}
			return p
		}, want: ""},
		{name: "late straggler of an older event", packets: func(t *testing.T) []pkt {
			p := stream(t, s, 1, t0, press{'1', 60 * time.Millisecond, 40 * time.Millisecond}, press{'2', 60 * time.Millisecond, 40 * time.Millisecond})
			late := p[1]
			return append(p, late)
		}, want: "12"},
		{name: "long press at 48 kHz is one digit", cfg: ReceiverConfig{ClockRate: 48000}, packets: func(t *testing.T) []pkt {
			return stream(t, Sender{ClockRate: 48000}, 1, t0, press{'#', 3 * time.Second, 0})
		}, want: "#", ended: []bool{true}, durs: []time.Duration{3 * time.Second}},
		{name: "new SSRC closes the old event", packets: func(t *testing.T) []pkt {
			p := one(t)[:3]
			return append(p, stream(t, s, 2, t0.Add(time.Second), press{'7', 100 * time.Millisecond, 0})...)
		}, want: "57", ended: []bool{false, true}},
		{name: "report on start", cfg: ReceiverConfig{ReportOnStart: true}, packets: func(t *testing.T) []pkt {
			return stream(t, s, 1, t0, press{'1', 60 * time.Millisecond, 40 * time.Millisecond}, press{'1', 60 * time.Millisecond, 40 * time.Millisecond})
		}, want: "11", durs: []time.Duration{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.PayloadType = 101
			r, err := NewReceiver(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got []KeyPress
			var last time.Time
			for _, p := range tt.packets(t) {
				got, err = r.Handle(got, p.h, p.payload, p.at)
				if err != nil {
					t.Fatal(err)
				}
				last = p.at
			}
			if tt.tick > 0 {
				got = r.Tick(got, last.Add(tt.tick))
			}
			var digits []byte
			for _, k := range got {
				digits = append(digits, k.Digit)
			}
			if string(digits) != tt.want {
				t.Fatalf("digits %q, want %q (%+v)", digits, tt.want, got)
			}
			for i, e := range tt.ended {
				if got[i].Ended != e {
					t.Errorf("press %d Ended = %v, want %v", i, got[i].Ended, e)
				}
			}
			for i, d := range tt.durs {
				if got[i].Duration != d {
					t.Errorf("press %d Duration = %v, want %v", i, got[i].Duration, d)
				}
			}
			if tt.tick == 0 {
				if more := r.Flush(nil); len(more) != 0 && len(got) > 0 && got[len(got)-1].Ended {
					t.Errorf("Flush reported %+v after an ended event", more)
				}
			}
		})
	}
}

func TestReceiverPayloadType(t *testing.T) {
	r, err := NewReceiver(ReceiverConfig{PayloadType: 96})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Accepts(96) || r.Accepts(101) {
		t.Fatal("Accepts")
	}
	if _, err := r.Handle(nil, Header{PayloadType: 0}, []byte{1, 0, 0, 0}, time.Now()); !errors.Is(err, ErrPayloadType) {
		t.Fatalf("audio packet: err = %v", err)
	}
	if _, err := r.Handle(nil, Header{PayloadType: 96}, []byte{1, 0}, time.Now()); !errors.Is(err, ErrShortPayload) {
		t.Fatalf("short payload: err = %v", err)
	}
	if _, err := NewReceiver(ReceiverConfig{PayloadType: 200}); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad payload type: err = %v", err)
	}
}

func TestReceiverTickRTP(t *testing.T) {
	r, _ := NewReceiver(ReceiverConfig{PayloadType: 101})
	now := time.Now()
	got, _ := r.Handle(nil, Header{PayloadType: 101, Timestamp: 1000}, Event{Code: 3, Duration: 400}.Marshal(), now)
	if got = r.TickRTP(got, 1000+400+1000); len(got) != 0 {
		t.Fatalf("closed too early: %+v", got)
	}
	if got = r.TickRTP(got, 1000+400+2000); len(got) != 1 || got[0].Digit != '3' || got[0].Ended {
		t.Fatalf("TickRTP: %+v", got)
	}
	if st := r.Stats(); st.KeyPresses != 1 || st.TimedOut != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReceiverMultiReport(t *testing.T) {
	r, _ := NewReceiver(ReceiverConfig{PayloadType: 101})
	now := time.Now()
	got, _ := r.Handle(nil, Header{PayloadType: 101, Timestamp: 8000}, Event{Code: 4, Duration: 320}.Marshal(), now)
	// A packet reporting the end of 4 and the start of 6 (RFC 4733 §2.5.1.5).
	payload := append(Event{Code: 4, End: true, Duration: 640}.Marshal(), Event{Code: 6, Duration: 0}.Marshal()...)
	got, err := r.Handle(got, Header{PayloadType: 101, Timestamp: 8800}, payload, now.Add(80*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	got, _ = r.Handle(got, Header{PayloadType: 101, Timestamp: 8800}, Event{Code: 6, End: true, Duration: 800}.Marshal(), now.Add(200*time.Millisecond))
	if len(got) != 2 || got[0].Digit != '4' || !got[0].Ended || got[0].Duration != 80*time.Millisecond || got[1].Digit != '6' {
		t.Fatalf("got %+v", got)
	}
}

func TestSenderPackets(t *testing.T) {
	p, err := Sender{}.Packets(nil, '9', 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// 0, 20, 40, 60, 80 ms updates, then three end packets at 100 ms.
	if len(p) != 8 {
		t.Fatalf("%d packets: %+v", len(p), p)
	}
	if !p[0].Marker || p[1].Marker || p[0].Event.Duration != 0 || p[0].Event.Code != 9 {
		t.Fatalf("first packets %+v %+v", p[0], p[1])
	}
	for i, q := range p[5:] {
		if !q.Event.End || q.Event.Duration != 800 || q.At != time.Duration(100+20*i)*time.Millisecond {
			t.Fatalf("end packet %d: %+v", i, q)
		}
	}
	if _, err := (Sender{}).Packets(nil, 'x', time.Second); !errors.Is(err, ErrDigit) {
		t.Fatalf("bad digit err = %v", err)
	}
}

func TestReceiverZeroAlloc(t *testing.T) {
	r, _ := NewReceiver(ReceiverConfig{PayloadType: 101})
	dst := make([]KeyPress, 0, 4)
	pkts := stream(t, Sender{}, 1, time.Now(), press{'5', 100 * time.Millisecond, 100 * time.Millisecond})
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		p := pkts[i%len(pkts)]
		i++
		dst, _ = r.Handle(dst[:0], p.h, p.payload, p.at)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}
