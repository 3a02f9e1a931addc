package dtmf

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for every parser of peer input. Seed corpora live in testdata/fuzz/<name>/.

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte{5, 0x8a, 0x03, 0x20})
	f.Add([]byte{1, 0x0a, 0, 0, 2, 0x8a, 0, 160})
	f.Fuzz(func(t *testing.T, payload []byte) {
		e, err := ParseEvent(payload)
		if err != nil {
			if len(payload) >= EventLen {
				t.Fatalf("ParseEvent(% x): %v", payload, err)
			}
			return
		}
		back, err := ParseEvent(e.Marshal())
		if err != nil || back != e {
			t.Fatalf("round trip %+v -> %+v, %v", e, back, err)
		}
		if _, err := ParseEvents(nil, payload); (err == nil) != (len(payload)%EventLen == 0) {
			t.Fatalf("ParseEvents(% x): %v", payload, err)
		}
		// A receiver must survive any packet sequence cut from the input.
		r, _ := NewReceiver(ReceiverConfig{PayloadType: 101, ReportOnStart: len(payload)%2 == 0})
		now := time.Unix(0, 0)
		var got []KeyPress
		for i := 0; i+8 <= len(payload); i += 8 {
			h := Header{PayloadType: 101, Timestamp: binary.BigEndian.Uint32(payload[i+4:]), SSRC: uint32(payload[i] >> 7)}
			got, _ = r.Handle(got, h, payload[i:i+4], now)
			now = now.Add(time.Duration(payload[i+1]) * time.Millisecond)
			got = r.TickRTP(got, h.Timestamp+uint32(payload[i+2])*100)
		}
		got = r.Flush(r.Tick(got, now.Add(time.Second)))
		for _, k := range got {
			if !strings.ContainsRune(eventDigits, rune(k.Digit)) || k.Duration < 0 {
				t.Fatalf("bad key press %+v", k)
			}
		}
		if st := r.Stats(); st.KeyPresses != uint64(len(got)) {
			t.Fatalf("stats %+v for %d key presses", st, len(got))
		}
	})
}

func FuzzSIPInfo(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("#"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		d, dur, err := ParseSIPInfo(contentType, body)
		if err != nil {
			return
		}
		if !strings.ContainsRune(eventDigits, rune(d)) || dur < 0 {
			t.Fatalf("ParseSIPInfo(%q, %q) = %q, %v", contentType, body, d, dur)
		}
	})
}

func FuzzDetector(f *testing.F) {
	f.Add(pcmBytes(Tones("1", GenOptions{On: 50 * time.Millisecond, Off: 50 * time.Millisecond})), uint16(160), false)
	f.Add(pcmBytes(Tones("#9", GenOptions{SampleRate: 16000, On: 60 * time.Millisecond, Off: 40 * time.Millisecond})), uint16(7), true)
	f.Fuzz(func(t *testing.T, raw []byte, block uint16, wide bool) {
		if len(raw) > 1<<16 {
			raw = raw[:1<<16] // four seconds at 8 kHz is plenty
		}
		rate := 8000
		if wide {
			rate = 16000
		}
		pcm := make([]int16, len(raw)/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		n := int(block)%997 + 1
		a, b := New(Config{SampleRate: rate}), New(Config{SampleRate: rate})
		var digits []byte
		var dets []Detection
		for i := 0; i < len(pcm); i += n {
			chunk := pcm[i:min(i+n, len(pcm))]
			digits = a.Process(digits, chunk)
			dets = b.ProcessEvents(dets, chunk)
		}
		dets = b.Flush(dets)
		if string(digits) != digitsOf(dets) {
			t.Fatalf("Process found %q, ProcessEvents %q", digits, digitsOf(dets))
		}
		total := time.Duration(len(pcm)) * time.Second / time.Duration(rate)
		var last time.Duration
		for _, d := range dets {
			if !strings.ContainsRune(digitMap, rune(d.Digit)) || d.Start < last || d.Duration <= 0 || d.Start+d.Duration > total+time.Millisecond {
				t.Fatalf("bad detection %v (after %v, stream %v)", d, last, total)
			}
			last = d.Start + d.Duration
		}
	})
}
