package dtmf

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// The Go versions of the vector kernels, which run on processors without AVX2, find the same
// digits at the same times.
func TestKernelFallback(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2: the Go kernels run everywhere")
	}
	speech := mustCorpus(t, corpora[0])
	inputs := []struct {
		name string
		sig  signal
	}{
		{"digits", signal{rate: 8000, pcm: Tones(strings.Repeat(allDigits, 2), GenOptions{On: 60 * time.Millisecond, Off: 60 * time.Millisecond})}},
		{"digits 16 kHz", signal{rate: 16000, pcm: Tones(allDigits, GenOptions{SampleRate: 16000, On: 60 * time.Millisecond, Off: 60 * time.Millisecond})}},
		{"talk-down", talkDown(speech, 0, 0, 8000)},
		{"noise", seqSpec{repeat: 2, rate: 8000, jitter: true}.build()},
	}
	inputs[3].sig.pcm = mix(inputs[3].sig.pcm, whiteNoise(len(inputs[3].sig.pcm), 900, 5), 1)
	for _, in := range inputs {
		cfg := Config{SampleRate: in.sig.rate}
		vec := detect(cfg, in.sig.pcm, 1)
		useAVX2 = false
		gov := detect(cfg, in.sig.pcm, 1)
		useAVX2 = true
		if digitsOf(vec) != digitsOf(gov) {
			t.Errorf("%s: %q with the vector kernels, %q with the Go ones", in.name, digitsOf(vec), digitsOf(gov))
			continue
		}
		for i := range vec {
			if d := vec[i].Start - gov[i].Start; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("%s: digit %d starts at %v, %v with the Go kernels", in.name, i, vec[i].Start, gov[i].Start)
			}
			if d := vec[i].Duration - gov[i].Duration; d < -2*time.Millisecond || d > 2*time.Millisecond {
				t.Errorf("%s: digit %d lasts %v, %v with the Go kernels", in.name, i, vec[i].Duration, gov[i].Duration)
			}
		}
	}
}

// The vector kernels that take runs of windows, quietWindows and steadyWindows, do what their Go
// versions do, to the bit: over every synthetic and talk-down case, fed the same blocks, two
// detectors, one with the vector kernels and one with the Go versions (the other kernels running
// in both), hold the same state after every block. The one exception is the group statistics past
// the largest power of each group (winPeak[2:], winArg), which nothing reads for a window that
// fails analyseBins's first test: for such a window the kernels leave them as an earlier window
// left them, where the Go versions compute them.
func TestRunKernels(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2: the Go versions run everywhere")
	}
	defer func() { useRunKernels = true }()
	eachSynthetic(t, func(name string, rate int, sig signal, seed uint64) {
		vec, gov := New(Config{SampleRate: rate}), New(Config{SampleRate: rate})
		rng := rand.New(rand.NewPCG(seed, 0xb10c))
		var dv, dg []Detection
		for pcm := sig.pcm; len(pcm) > 0; {
			n := min(1+rng.IntN(480), len(pcm))
			useRunKernels = true
			dv = vec.ProcessEvents(dv, pcm[:n])
			useRunKernels = false
			dg = gov.ProcessEvents(dg, pcm[:n])
			pcm = pcm[n:]
			if !sameState(vec, gov) {
				t.Errorf("%s: the detectors differ %d samples from the end (sub-block %d)", name, len(pcm), vec.nsub)
				return
			}
		}
		if !slices.Equal(dv, dg) {
			t.Errorf("%s: %v with the vector kernels, %v with the Go ones", name, dv, dg)
		}
	})
}

// sameState reports whether detectors a and b hold the same state, to the bit: all but the output
// slices, and but winPeak[2:] and winArg (see TestRunKernels).
func sameState(a, b *Detector) bool {
	x, y := *a, *b
	x.winPeak[2], x.winPeak[3], x.winArg = 0, 0, [4]int{}
	y.winPeak[2], y.winPeak[3], y.winArg = 0, 0, [4]int{}
	n := unsafe.Offsetof(x.digits)
	return bytes.Equal(unsafe.Slice((*byte)(unsafe.Pointer(&x)), n), unsafe.Slice((*byte)(unsafe.Pointer(&y)), n)) && x.want == y.want
}
