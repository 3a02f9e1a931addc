package wsjson

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/callproof/callproof/media"
)

// TestCodecs: L16 is big-endian (RTP's network byte order), G.711 goes through media's tables,
// and every codec round-trips a frame.
func TestCodecs(t *testing.T) {
	if got := L16.Append(nil, []int16{0x0102, -2}); !bytes.Equal(got, []byte{0x01, 0x02, 0xff, 0xfe}) {
		t.Errorf("L16 bytes % x, want 01 02 ff fe", got)
	}
	if got := L16.Decode(make([]int16, 2), []byte{0x01, 0x02, 0xff, 0xfe, 0x07}); got[0] != 0x0102 || got[1] != -2 || len(got) != 2 {
		t.Errorf("L16 decode %v", got)
	}
	pcm := []int16{0, 100, -100, 32767, -32768}
	for _, c := range []Codec{Ulaw, Alaw, L16} {
		enc := c.Append(nil, pcm)
		if len(enc) != len(pcm)*c.SampleBytes() {
			t.Errorf("%s: %d bytes for %d samples", c, len(enc), len(pcm))
		}
		dec := c.Decode(make([]int16, len(pcm)), enc)
		again := c.Decode(make([]int16, len(pcm)), c.Append(nil, dec))
		if !equal(dec, again) {
			t.Errorf("%s: decode(encode(x)) is not stable: %v then %v", c, dec, again)
		}
	}
	if Ulaw.Append(nil, []int16{0})[0] != media.UlawSilence || Alaw.Append(nil, []int16{0})[0] != media.AlawSilence {
		t.Errorf("silence does not encode to the codes of silence")
	}
}

func equal(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestChunks: prompts are cut into media bodies of at most a second of whole frames, in the
// codec asked for, cached per codec.
func TestChunks(t *testing.T) {
	clip, err := media.NewClip("p", make([]int16, 2*media.SampleRate+10)) // padded to 2.02 s
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		codec Codec
		sizes []int
	}{{Ulaw, []int{8000, 8000, 160}}, {Alaw, []int{8000, 8000, 160}}, {L16, []int{16000, 16000, 320}}} {
		chunks := ChunksFor(clip, tc.codec)
		if len(chunks) != len(tc.sizes) {
			t.Fatalf("%s: %d chunks, want %d", tc.codec, len(chunks), len(tc.sizes))
		}
		for i, c := range chunks {
			s := string(c)
			if !strings.HasPrefix(s, chunkHead) || !strings.HasSuffix(s, chunkTail) {
				t.Fatalf("%s chunk %d: %.40s", tc.codec, i, s)
			}
			b, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(s, chunkHead), chunkTail))
			if err != nil || len(b) != tc.sizes[i] {
				t.Errorf("%s chunk %d: %d bytes (%v), want %d", tc.codec, i, len(b), err, tc.sizes[i])
			}
		}
		if again := ChunksFor(clip, tc.codec); &again[0][0] != &chunks[0][0] {
			t.Errorf("%s: chunks built twice", tc.codec)
		}
	}
}

func TestHelpers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{{"welcome", true}, {"", false}, {strings.Repeat("m", MaxMarkName), true}, {strings.Repeat("m", MaxMarkName+1), false}, {"bad\xff", false}} {
		if ValidMark(tc.in) != tc.want {
			t.Errorf("ValidMark(%.20q) = %v", tc.in, !tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"http://h/p", "ws://h/p"}, {"https://h/p", "wss://h/p"}, {"ws://h", "ws://h"}, {"wss://h", "wss://h"}, {"ftp://h", ""},
	} {
		u, err := DialURL(tc.in)
		if got := ""; err == nil {
			got = u.String()
			if got != tc.want {
				t.Errorf("DialURL(%s) = %s, want %s", tc.in, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("DialURL(%s): %v", tc.in, err)
		}
	}
	for _, d := range []string{"0", "9", "*", "#", "A", "D"} {
		if _, ok := Digit([]byte(d)); !ok {
			t.Errorf("Digit(%q) refused", d)
		}
	}
	for _, d := range []string{"", "E", "a", "12", "x"} {
		if _, ok := Digit([]byte(d)); ok {
			t.Errorf("Digit(%q) accepted", d)
		}
	}
	if r := TruncReason(strings.Repeat("é", 100)); len(r) > MaxCloseReason || !strings.HasPrefix(strings.Repeat("é", 100), r) {
		t.Errorf("TruncReason cut badly: %d bytes", len(r))
	}
}
