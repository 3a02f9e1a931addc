package media

import (
	"math/bits"
	"testing"
)

// Reference points from ITU-T G.711 (Tables 1a/1b and 2a/2b), in 16-bit PCM: μ-law works on
// 14-bit magnitudes (×4), A-law on 13-bit (×8). Character signals are given as transmitted
// (μ-law all bits inverted, A-law even bits inverted).
func TestG711ReferenceValues(t *testing.T) {
	ulaw := []struct {
		name string
		code byte
		pcm  int16
	}{
		{"positive zero", 0xFF, 0},
		{"negative zero", 0x7F, 0},
		{"first step", 0xFE, 8},
		{"segment 1 start", 0xEF, 132},
		{"segment 7 start", 0x8F, 16764},
		{"positive maximum (8031×4)", 0x80, 32124},
		{"negative maximum", 0x00, -32124},
		{"negative first step", 0x7E, -8},
	}
	for _, c := range ulaw {
		if got := UlawToPCM(c.code); got != c.pcm {
			t.Errorf("μ-law %s: decode(%#02x) = %d, want %d", c.name, c.code, got, c.pcm)
		}
	}
	alaw := []struct {
		name string
		code byte
		pcm  int16
	}{
		{"smallest positive (1×8)", 0xD5, 8},
		{"smallest negative", 0x55, -8},
		{"segment 1 start (33×8)", 0xC5, 264},
		{"positive maximum (4032×8)", 0xAA, 32256},
		{"negative maximum", 0x2A, -32256},
	}
	for _, c := range alaw {
		if got := AlawToPCM(c.code); got != c.pcm {
			t.Errorf("A-law %s: decode(%#02x) = %d, want %d", c.name, c.code, got, c.pcm)
		}
	}
	enc := []struct {
		name string
		pcm  int16
		u, a byte
	}{
		{"zero", 0, 0xFF, 0xD5},
		{"full scale", 32767, 0x80, 0xAA},
		{"negative full scale", -32768, 0x00, 0x2A},
		{"minus one", -1, 0x7F, 0x55},
	}
	for _, c := range enc {
		if got := PCMToUlaw(c.pcm); got != c.u {
			t.Errorf("μ-law encode %s (%d) = %#02x, want %#02x", c.name, c.pcm, got, c.u)
		}
		if got := PCMToAlaw(c.pcm); got != c.a {
			t.Errorf("A-law encode %s (%d) = %#02x, want %#02x", c.name, c.pcm, got, c.a)
		}
	}
}

// Every code decodes to a reconstruction level that encodes back to the same code (μ-law's
// negative zero aside), and the levels rise with the code's magnitude.
func TestG711RoundTripAndOrder(t *testing.T) {
	for c := 0; c < 256; c++ {
		if c == 0x7F {
			continue
		}
		if got := PCMToUlaw(UlawToPCM(byte(c))); got != byte(c) {
			t.Errorf("μ-law %#02x -> %d -> %#02x", c, UlawToPCM(byte(c)), got)
		}
		if got := PCMToAlaw(AlawToPCM(byte(c))); got != byte(c) {
			t.Errorf("A-law %#02x -> %d -> %#02x", c, AlawToPCM(byte(c)), got)
		}
	}
	prevU, prevA := int16(-32768), int16(-32768)
	for s := -32768; s <= 32767; s += 7 {
		u := UlawToPCM(PCMToUlaw(int16(s)))
		a := AlawToPCM(PCMToAlaw(int16(s)))
		if u < prevU || a < prevA {
			t.Fatalf("quantiser not monotonic at %d: μ %d after %d, A %d after %d", s, u, prevU, a, prevA)
		}
		prevU, prevA = u, a
	}
}

// The quantisation error never exceeds half a step of the segment (G.711's decision levels
// sit halfway between reconstruction levels), except beyond the clipping point.
func TestG711QuantisationError(t *testing.T) {
	for s := -32000; s <= 32000; s++ {
		x := int16(s)
		mag := s
		if mag < 0 {
			mag = -mag
		}
		// μ-law: segment k (from the biased magnitude) has steps of 8<<k in 16-bit units.
		uSeg := max(bits.Len(uint(mag+ulawBias)>>7)-1, 0)
		uStep := 8 << uSeg
		if d := abs(int(UlawToPCM(PCMToUlaw(x))) - s); d > uStep/2+4 {
			t.Fatalf("μ-law error %d at %d exceeds half step %d", d, s, uStep/2)
		}
		// A-law: 13-bit segments 0 and 1 have steps of 2, segment k ≥ 2 of 2^k (×8 here).
		v := mag >> 3
		aStep := 16
		if v >= 64 {
			aStep = 8 << (bits.Len(uint(v)) - 5)
		}
		if d := abs(int(AlawToPCM(PCMToAlaw(x))) - s); d > aStep/2+8 {
			t.Fatalf("A-law error %d at %d exceeds half step %d", d, s, aStep/2)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestFrameCodecsDoNotAllocate(t *testing.T) {
	pcm := make([]int16, FrameSamples)
	buf := make([]byte, FrameSamples)
	allocs := testing.AllocsPerRun(100, func() {
		EncodeUlaw(buf, pcm)
		DecodeUlaw(pcm, buf)
		EncodeAlaw(buf, pcm)
		DecodeAlaw(pcm, buf)
	})
	if allocs != 0 {
		t.Fatalf("G.711 frame codecs allocate %v times per frame", allocs)
	}
}

func BenchmarkDecodeUlawFrame(b *testing.B) {
	src := make([]byte, FrameSamples)
	dst := make([]int16, FrameSamples)
	b.ReportAllocs()
	for b.Loop() {
		DecodeUlaw(dst, src)
	}
}

func TestMaskPhone(t *testing.T) {
	for in, want := range map[string]string{
		"+14155550100": "***0100", "": "", "1234": "****", "(415) 555-0100": "***0100", "anonymous": "",
	} {
		if got := MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}
