package dtmf

import (
	"fmt"
	"math"
	"sync"
	"testing"
)

// Speech and music cases of the conformance suite (dtmf.md §6.1 talk-down, §6.2 talk-off).
// The corpora are Debian packages that scripts/test.sh installs; a missing corpus fails.

// allCases is the synthetic suite plus the corpus cases.
func allCases(t *testing.T) []*confCase {
	var cs []*confCase
	// Talk-down: 64 digits of 60 ms every 500 ms at −10 dBm0 per tone over English speech whose
	// long-term level is −12 dBm0 at "0 dB". spandsp 0.0.6 found 61/36/26 of 64 at −6/0/+6 dB
	// (dtmf.md §5.4); the minimums below sit above those.
	for _, td := range []struct {
		rel float64
		min int
	}{{-12, 64}, {-6, 62}, {0, 46}, {6, 30}} {
		c := &confCase{group: "talk-down", name: fmt.Sprintf("speech at %+g dB", td.rel), want: atLeast, min: td.min}
		speech := mustCorpus(t, corpora[0]) // loaded here, where a failure can stop the test
		c.build = func(rate int) signal { return talkDown(speech, td.rel, 0, rate) }
		cs = append(cs, c)
	}
	// Talk-off: every corpus at its own level and 6 dB louder must give no digit at all.
	for _, cp := range corpora {
		pcm := mustCorpus(t, cp)
		for _, gain := range []float64{1, 2} {
			c := &confCase{group: "talk-off", name: fmt.Sprintf("%s at %+.0f dB", cp.name, 20*math.Log10(gain)), want: rejectAll, talkOff: true}
			switch {
			case raceEnabled && gain != 1:
				// The race detector slows the detector twentyfold and can find nothing more in
				// another hour of audio: under -race the corpora run through fewer paths.
				c.paths = []string{"s16"}
			case raceEnabled:
				c.paths = []string{"s16", "ulaw"}
			case gain != 1:
				c.paths = []string{"s16", "ulaw"} // the louder copy through the linear and μ-law paths only
			}
			c.build = func(rate int) signal {
				in := scaled(pcm, gain)
				if rate == 16000 {
					in = upsampled(in, cp.name, gain)
				}
				return signal{rate: rate, pcm: in}
			}
			cs = append(cs, c)
		}
	}
	// The long corpus cases first, so that the parallel subtests pack well.
	return append(cs, conformanceCases()...)
}

func mustCorpus(t *testing.T, c corpus) []int16 {
	pcm, err := loadCorpus(c)
	if err != nil {
		t.Fatal(err)
	}
	return pcm
}

var scaledCache sync.Map

// scaled returns pcm times gain (clipped), cached.
func scaled(pcm []int16, gain float64) []int16 {
	if gain == 1 {
		return pcm
	}
	key := fmt.Sprintf("%p %g", &pcm[0], gain)
	if v, ok := scaledCache.Load(key); ok {
		return v.([]int16)
	}
	out := make([]int16, len(pcm))
	for i, s := range pcm {
		out[i] = clip16(float64(s) * gain)
	}
	scaledCache.Store(key, out)
	return out
}

func upsampled(pcm []int16, name string, gain float64) []int16 {
	key := fmt.Sprintf("%s %g 16k", name, gain)
	if v, ok := scaledCache.Load(key); ok {
		return v.([]int16)
	}
	out := upsample2(pcm)
	scaledCache.Store(key, out)
	return out
}
