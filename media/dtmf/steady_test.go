package dtmf

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// detectFull is detect without the steady-window shortcut: every window gets the full analysis.
func detectFull(cfg Config, pcm []int16, seed uint64) []Detection {
	d := New(cfg)
	d.fullOnly = true
	rng := rand.New(rand.NewPCG(seed, 0xb10c))
	var out []Detection
	for len(pcm) > 0 {
		n := min(1+rng.IntN(480), len(pcm))
		out = d.ProcessEvents(out, pcm[:n])
		pcm = pcm[n:]
	}
	return d.Flush(out)
}

// The steady-window shortcut gives the results of the full analysis: over every synthetic case of
// the conformance suite and the talk-down cases, the graded results with and without it are the
// same.
func TestSteadyShortcut(t *testing.T) {
	var cases []*confCase
	for _, c := range allCases(t) {
		if c.group != "talk-off" {
			cases = append(cases, c)
		}
	}
	paths := confPaths
	if raceEnabled {
		paths = confPaths[:1]
	}
	for _, c := range cases {
		for _, p := range paths {
			if len(c.paths) > 0 && !slices.Contains(c.paths, p.name) {
				continue
			}
			sig := c.build(p.rate)
			if p.codec != linear {
				sig.pcm = p.codec.apply(sig.pcm)
			}
			seed := seedOf(c.group + c.name + p.name)
			fast := grade(sig, detect(Config{SampleRate: p.rate}, sig.pcm, seed))
			full := grade(sig, detectFull(Config{SampleRate: p.rate}, sig.pcm, seed))
			if fast != full {
				t.Errorf("%s/%s %s: %v with the shortcut, %v without", c.group, c.name, p.name, fast, full)
			}
		}
	}
}
