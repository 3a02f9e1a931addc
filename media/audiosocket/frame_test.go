package audiosocket

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func frame(kind byte, payload []byte) []byte { return appendFrame(nil, kind, payload) }

func TestCheckFrame(t *testing.T) {
	uuid := bytes.Repeat([]byte{0xab}, 16)
	tests := []struct {
		name    string
		kind    byte
		payload []byte
		first   bool
		want    string // "" for valid, else a substring of the error
	}{
		{"uuid first", kindUUID, uuid, true, ""},
		{"audio first", kindSlin, make([]byte, 320), true, "first frame is kind 0x10"},
		{"short uuid", kindUUID, uuid[:15], true, "UUID frame of 15 bytes"},
		{"second uuid", kindUUID, uuid, false, "second UUID"},
		{"audio", kindSlin, make([]byte, 320), false, ""},
		{"short audio", kindSlin, make([]byte, 2), false, ""},
		{"odd audio", kindSlin, make([]byte, 321), false, "321 bytes"},
		{"empty audio", kindSlin, nil, false, "0 bytes"},
		{"dtmf", kindDTMF, []byte("5"), false, ""},
		{"dtmf star", kindDTMF, []byte("*"), false, ""},
		{"dtmf bad digit", kindDTMF, []byte("x"), false, "DTMF frame"},
		{"dtmf two bytes", kindDTMF, []byte("12"), false, "DTMF frame"},
		{"hangup", kindHangup, nil, false, ""},
		{"error with code", kindError, []byte{0x01}, false, ""},
		{"error without code", kindError, nil, false, ""},
		{"slin16", 0x11, make([]byte, 640), false, "sample rate above 8 kHz"},
		{"silence kind", 0x02, nil, false, "unknown frame kind 0x02"},
		{"unknown", 0x42, nil, false, "unknown frame kind 0x42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkFrame(tt.kind, tt.payload, tt.first)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want valid", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if err != nil {
				if _, ok := err.(*protoError); !ok {
					t.Fatalf("error %T is not a *protoError", err)
				}
			}
		})
	}
}

func TestFrameReader(t *testing.T) {
	t.Run("frames then EOF", func(t *testing.T) {
		var stream []byte
		stream = appendFrame(stream, kindUUID, bytes.Repeat([]byte{1}, 16))
		stream = appendFrame(stream, kindSlin, make([]byte, 320))
		stream = appendFrame(stream, kindHangup, nil)
		fr := frameReader{r: bytes.NewReader(stream)}
		for _, want := range []struct {
			kind byte
			n    int
		}{{kindUUID, 16}, {kindSlin, 320}, {kindHangup, 0}} {
			kind, p, err := fr.next()
			if err != nil || kind != want.kind || len(p) != want.n {
				t.Fatalf("got kind 0x%02x len %d err %v, want 0x%02x len %d", kind, len(p), err, want.kind, want.n)
			}
		}
		if _, _, err := fr.next(); err != io.EOF {
			t.Fatalf("at end got %v, want io.EOF", err)
		}
	})
	t.Run("truncated payload", func(t *testing.T) {
		fr := frameReader{r: bytes.NewReader([]byte{kindSlin, 0x01, 0x40, 0, 0})}
		if _, _, err := fr.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("truncated header", func(t *testing.T) {
		fr := frameReader{r: bytes.NewReader([]byte{kindSlin, 0x01})}
		if _, _, err := fr.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("oversize", func(t *testing.T) {
		fr := frameReader{r: bytes.NewReader([]byte{kindSlin, 0xff, 0xff})}
		_, _, err := fr.next()
		var pe *protoError
		if !errors.As(err, &pe) || !strings.Contains(pe.msg, "65535 bytes exceeds 4096") {
			t.Fatalf("got %v, want an oversize protocol error", err)
		}
	})
}

func TestUUID(t *testing.T) {
	u := [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	const s = "12345678-9abc-def0-0123-456789abcdef"
	if got := FormatUUID(u); got != s {
		t.Fatalf("FormatUUID = %s, want %s", got, s)
	}
	for _, in := range []string{s, strings.ToUpper(s)} {
		got, err := ParseUUID(in)
		if err != nil || got != u {
			t.Fatalf("ParseUUID(%s) = %x, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "12345678", s[:35] + "g", "12345678_9abc-def0-0123-456789abcdef", s + "0", "{" + s[1:]} {
		if _, err := ParseUUID(bad); !errors.Is(err, ErrBadUUID) {
			t.Errorf("ParseUUID(%q) = %v, want ErrBadUUID", bad, err)
		}
	}
	n := NewUUID()
	if n[6]>>4 != 4 || n[8]>>6 != 2 {
		t.Fatalf("NewUUID %x is not version 4, variant 10", n)
	}
	if back, err := ParseUUID(FormatUUID(n)); err != nil || back != n {
		t.Fatalf("round trip of %x: %x, %v", n, back, err)
	}
}

// FuzzFrame feeds arbitrary bytes to the TLV reader and the frame checker, as a misbehaving
// Asterisk (or anything else that reaches the port) would. They must never panic, never read
// past a frame, and every frame they accept must re-encode to the bytes it came from.
func FuzzFrame(f *testing.F) {
	uuid := bytes.Repeat([]byte{0x42}, 16)
	f.Add(frame(kindUUID, uuid))
	f.Add(append(frame(kindUUID, uuid), frame(kindSlin, make([]byte, 320))...))
	f.Add(append(frame(kindUUID, uuid), frame(kindDTMF, []byte("#"))...))
	f.Add(append(frame(kindUUID, uuid), frame(kindError, []byte{0x03})...))
	f.Add(frame(kindSlin, make([]byte, 3)))
	f.Add([]byte{0x10, 0xff, 0xff})
	f.Add([]byte{0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		fr := frameReader{r: r}
		first := true
		consumed := 0
		for {
			kind, p, err := fr.next()
			if err != nil {
				var pe *protoError
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &pe) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			if len(p) > maxPayload {
				t.Fatalf("payload of %d bytes accepted", len(p))
			}
			end := len(data) - r.Len()
			if got := frame(kind, p); !bytes.Equal(got, data[consumed:end]) {
				t.Fatalf("frame re-encodes to %x, read from %x", got, data[consumed:end])
			}
			consumed = end
			if err := checkFrame(kind, p, first); err != nil {
				if _, ok := err.(*protoError); !ok {
					t.Fatalf("checkFrame error %T is not a *protoError", err)
				}
				return
			}
			first = false
		}
	})
}
