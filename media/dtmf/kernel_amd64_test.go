package dtmf

import (
	"strings"
	"testing"
	"time"
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
