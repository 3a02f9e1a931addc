package resample

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// bessel0 is the modified Bessel function of the first kind, order 0 (power series).
func bessel0(x float64) float64 {
	s, t := 1.0, 1.0
	for k := 1; k < 60; k++ {
		t *= x / 2 / float64(k)
		s += t * t
	}
	return s
}

// TestTapsMatchDesign re-derives the Q15 taps from the documented design.
func TestTapsMatchDesign(t *testing.T) {
	const beta = 7.0
	var sum int64
	for j := range side {
		n := float64(2*j + 1)
		sinc := math.Sin(math.Pi*n/2) / (math.Pi * n)
		r := n / halfLen
		w := bessel0(beta*math.Sqrt(1-r*r)) / bessel0(beta)
		want := int64(math.Round(sinc * w * (1 << q15)))
		if side[j] != want {
			t.Errorf("tap ±%d = %d, design gives %d", 2*j+1, side[j], want)
		}
		sum += side[j]
	}
	if sum != center/2 {
		t.Errorf("side taps sum to %d, want %d (DC gain 1)", sum, center/2)
	}
}

func tone(rate, hz int, amp float64, n int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(math.Round(amp * math.Sin(2*math.Pi*float64(hz)*float64(i)/float64(rate))))
	}
	return pcm
}

// level is the amplitude of the hz component of pcm (sampled at rate), by projection on a sine
// and cosine; pcm should hold a whole number of periods (1 s does for whole hertz).
func level(pcm []int16, rate, hz int) float64 {
	var a, b float64
	for i, s := range pcm {
		w := 2 * math.Pi * float64(hz) * float64(i) / float64(rate)
		a += float64(s) * math.Cos(w)
		b += float64(s) * math.Sin(w)
	}
	return 2 * math.Hypot(a, b) / float64(len(pcm))
}

func db(x float64) float64 { return 20 * math.Log10(x) }

// steady returns the last second of a conversion's output, after the filter has settled.
func steady(out []int16, rate int) []int16 { return out[len(out)-rate:] }

func TestPassband(t *testing.T) {
	const amp = 10000
	for _, hz := range []int{50, 300, 1000, 1209, 1633, 2500, 3000, 3400} {
		var u Up
		out := u.Process(nil, tone(8000, hz, amp, 8000+200))
		if g := db(level(steady(out, 16000), 16000, hz) / amp); math.Abs(g) > 0.5 {
			t.Errorf("Up %d Hz: gain %.3f dB, want within ±0.5", hz, g)
		}
		var d Down
		out = d.Process(nil, tone(16000, hz, amp, 16000+400))
		if g := db(level(steady(out, 8000), 8000, hz) / amp); math.Abs(g) > 0.5 {
			t.Errorf("Down %d Hz: gain %.3f dB, want within ±0.5", hz, g)
		}
		if g := db(level(UpClip(tone(8000, hz, amp, 8000)), 16000, hz) / amp); math.Abs(g) > 0.5 {
			t.Errorf("UpClip %d Hz: gain %.3f dB, want within ±0.5", hz, g)
		}
	}
}

// TestAliasRejection: decimating, a 16 kHz tone at 4.6 kHz or above would fold to 8000−f; it
// must come out at least 50 dB down. Interpolating, the image of an 8 kHz tone at f appears at
// 8000−f; it too must be 50 dB down.
func TestAliasRejection(t *testing.T) {
	const amp = 20000
	for _, hz := range []int{4600, 5000, 6000, 7000, 7900} {
		var d Down
		out := steady(d.Process(nil, tone(16000, hz, amp, 16000+400)), 8000)
		if r := db(level(out, 8000, 8000-hz) / amp); r > -50 {
			t.Errorf("Down: %d Hz aliases to %d Hz at %.1f dB, want ≤ −50", hz, 8000-hz, r)
		}
	}
	for _, hz := range []int{100, 1000, 2000, 3000, 3400} {
		var u Up
		out := steady(u.Process(nil, tone(8000, hz, amp, 8000+200)), 16000)
		if r := db(level(out, 16000, 8000-hz) / amp); r > -50 {
			t.Errorf("Up: image of %d Hz at %d Hz is %.1f dB, want ≤ −50", hz, 8000-hz, r)
		}
		clip := UpClip(tone(8000, hz, amp, 8000))
		if r := db(level(clip, 16000, 8000-hz) / amp); r > -50 {
			t.Errorf("UpClip: image of %d Hz is %.1f dB, want ≤ −50", hz, r)
		}
	}
}

func TestDCAndSaturation(t *testing.T) {
	for _, v := range []int16{1000, -1, 32767, -32768} {
		in := make([]int16, 400)
		for i := range in {
			in[i] = v
		}
		var u Up
		up := u.Process(nil, in)
		var d Down
		down := d.Process(nil, in)
		for i := 2 * Taps; i < len(up); i++ {
			if up[i] != v {
				t.Fatalf("Up of constant %d: sample %d = %d", v, i, up[i])
			}
		}
		for i := Taps; i < len(down); i++ {
			if down[i] != v {
				t.Fatalf("Down of constant %d: sample %d = %d", v, i, down[i])
			}
		}
	}
	// A full-scale square wave overshoots; the result must clip, not wrap.
	sq := make([]int16, 800)
	for i := range sq {
		sq[i] = 32767
		if i/20%2 == 1 {
			sq[i] = -32768
		}
	}
	var u Up
	up := u.Process(nil, sq)
	for i := 1; i < len(up); i++ {
		if step := int(up[i]) - int(up[i-1]); step > 50000 || step < -50000 {
			t.Fatalf("Up wrapped at %d: %d after %d", i, up[i], up[i-1])
		}
	}
	clip := UpClip(sq)
	if slices.Min(clip) != -32768 || slices.Max(clip) != 32767 {
		t.Errorf("UpClip of a square wave spans %d..%d, want full scale", slices.Min(clip), slices.Max(clip))
	}
}

func noise(n int, seed uint64) []int16 {
	r := rand.New(rand.NewPCG(seed, 1))
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(r.IntN(65536) - 32768)
	}
	return pcm
}

// TestStreaming: a stream converted in blocks of any size equals the one-shot conversion.
func TestStreaming(t *testing.T) {
	in := noise(4000, 7)
	var u1, u2 Up
	var d1, d2 Down
	wantUp := u1.Process(nil, in)
	wantDown := d1.Process(nil, in)
	r := rand.New(rand.NewPCG(3, 4))
	var gotUp, gotDown []int16
	for off := 0; off < len(in); {
		n := min(r.IntN(400), len(in)-off)
		gotUp = u2.Process(gotUp, in[off:off+n])
		gotDown = d2.Process(gotDown, in[off:off+n])
		off += n
	}
	if !slices.Equal(gotUp, wantUp) {
		t.Error("Up in blocks differs from Up in one piece")
	}
	if !slices.Equal(gotDown, wantDown) {
		t.Error("Down in blocks differs from Down in one piece")
	}
	if len(wantUp) != 2*len(in) || len(wantDown) != len(in)/2 {
		t.Errorf("lengths: Up %d, Down %d for %d in", len(wantUp), len(wantDown), len(in))
	}
	u1.Reset()
	d1.Reset()
	if !slices.Equal(u1.Process(nil, in), wantUp) || !slices.Equal(d1.Process(nil, in), wantDown) {
		t.Error("Reset does not restore the zero state")
	}
}

// TestUpClipIsZeroPhaseUp: UpClip keeps every input sample and equals Up advanced by Delay.
func TestUpClipIsZeroPhaseUp(t *testing.T) {
	in := noise(1000, 9)
	clip := UpClip(in)
	if len(clip) != 2*len(in) {
		t.Fatalf("UpClip gave %d samples for %d", len(clip), len(in))
	}
	for i, s := range in {
		if clip[2*i] != s {
			t.Fatalf("UpClip(x)[%d] = %d, want x[%d] = %d", 2*i, clip[2*i], i, s)
		}
	}
	var u Up
	stream := u.Process(nil, append(slices.Clone(in), make([]int16, len(side))...))
	if !slices.Equal(stream[Delay:Delay+len(clip)], clip) {
		t.Error("UpClip differs from Up advanced by Delay samples")
	}
	if UpClip(nil) == nil || len(UpClip(nil)) != 0 {
		t.Error("UpClip(nil) should be an empty slice")
	}
}

// TestUpClipGolden pins UpClip's output bit for bit: simulated clients recognise prompts by
// their samples, so a change here is a change of the wire contract.
func TestUpClipGolden(t *testing.T) {
	in := append(tone(8000, 697, 8000, 800), noise(800, 11)...)
	out := UpClip(in)
	b := make([]byte, 2*len(out))
	for i, s := range out {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
	}
	sum := sha256.Sum256(b)
	const want = "aee5c7aebbd3e72142dcf8beeb116ab4e259969e49b701309ce30b34c86d75bf"
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("UpClip golden hash = %s, want %s", got, want)
	}
}

func TestZeroAllocs(t *testing.T) {
	in16 := noise(320, 1)
	in8 := noise(160, 2)
	dst := make([]int16, 0, 320)
	var u Up
	var d Down
	if n := testing.AllocsPerRun(100, func() { dst = u.Process(dst[:0], in8) }); n != 0 {
		t.Errorf("Up.Process allocates %.1f times per 20 ms frame", n)
	}
	if n := testing.AllocsPerRun(100, func() { dst = d.Process(dst[:0], in16) }); n != 0 {
		t.Errorf("Down.Process allocates %.1f times per 20 ms frame", n)
	}
}

func BenchmarkDown20ms(b *testing.B) {
	in := noise(320, 1)
	dst := make([]int16, 0, 160)
	var d Down
	b.ReportAllocs()
	b.SetBytes(640)
	for b.Loop() {
		dst = d.Process(dst[:0], in)
	}
}

func BenchmarkUp20ms(b *testing.B) {
	in := noise(160, 1)
	dst := make([]int16, 0, 320)
	var u Up
	b.ReportAllocs()
	b.SetBytes(320)
	for b.Loop() {
		dst = u.Process(dst[:0], in)
	}
}

func BenchmarkUpClip3s(b *testing.B) {
	in := noise(24000, 1)
	b.ReportAllocs()
	for b.Loop() {
		_ = UpClip(in)
	}
}

// response is the magnitude of the Q15 half-band filter at hz (16 kHz sampling), from its taps.
func response(hz float64) float64 {
	w := 2 * math.Pi * hz / 16000
	g := float64(center)
	for j, c := range side {
		g += 2 * float64(c) * math.Cos(w*float64(2*j+1))
	}
	return math.Abs(g) / center / 2
}

// TestDocumentedResponse holds the figures doc.go states, computed from the taps.
func TestDocumentedResponse(t *testing.T) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for hz := 0.0; hz <= 3400; hz += 5 {
		g := db(response(hz))
		lo, hi = min(lo, g), max(hi, g)
	}
	stop := math.Inf(-1)
	for hz := 4600.0; hz <= 8000; hz += 5 {
		stop = max(stop, db(response(hz)))
	}
	t.Logf("passband 0-3.4 kHz: %+.4f..%+.4f dB; 4 kHz: %.2f dB; stopband 4.6-8 kHz: ≤ %.1f dB", lo, hi, db(response(4000)), stop)
	if lo < -0.005 || hi > 0.005 {
		t.Errorf("passband ripple %.4f..%.4f dB exceeds the documented ±0.005 dB", lo, hi)
	}
	if stop > -69 {
		t.Errorf("stopband %.1f dB is weaker than the documented 69 dB", stop)
	}
}
