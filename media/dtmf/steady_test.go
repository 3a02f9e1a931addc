package dtmf

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// detectFull is detect without the steady-window shortcut: every window gets the full analysis.
func detectFull(cfg Config, pcm []int16, seed uint64) []Detection {
	return detectWith(cfg, pcm, seed, func(d *Detector) { d.fullOnly = true })
}

// detectWith is detect with the detector set up by set first.
func detectWith(cfg Config, pcm []int16, seed uint64, set func(*Detector)) []Detection {
	out, _ := runWith(cfg, pcm, seed, set)
	return out
}

// runWith is detectWith that also returns the detector, after the last sample.
func runWith(cfg Config, pcm []int16, seed uint64, set func(*Detector)) ([]Detection, *Detector) {
	d := New(cfg)
	set(d)
	rng := rand.New(rand.NewPCG(seed, 0xb10c))
	var out []Detection
	for len(pcm) > 0 {
		n := min(1+rng.IntN(480), len(pcm))
		out = d.ProcessEvents(out, pcm[:n])
		pcm = pcm[n:]
	}
	return d.Flush(out), d
}

// eachSynthetic calls f with every synthetic and talk-down case of the conformance suite on
// each of its paths (only the first under the race detector), its signal built and coded, and
// its seed.
func eachSynthetic(t *testing.T, f func(name string, rate int, sig signal, seed uint64)) {
	paths := confPaths
	if raceEnabled {
		paths = confPaths[:1]
	}
	for _, c := range allCases(t) {
		if c.group == "talk-off" {
			continue
		}
		for _, p := range paths {
			if len(c.paths) > 0 && !slices.Contains(c.paths, p.name) {
				continue
			}
			sig := c.build(p.rate)
			if p.codec != linear {
				sig.pcm = p.codec.apply(sig.pcm)
			}
			f(c.group+"/"+c.name+" "+p.name, p.rate, sig, seedOf(c.group+c.name+p.name))
		}
	}
}

// The steady-window shortcut gives the results of the full analysis: over every synthetic case of
// the conformance suite and the talk-down cases, the graded results with and without it are the
// same.
func TestSteadyShortcut(t *testing.T) {
	eachSynthetic(t, func(name string, rate int, sig signal, seed uint64) {
		fast := grade(sig, detect(Config{SampleRate: rate}, sig.pcm, seed))
		full := grade(sig, detectFull(Config{SampleRate: rate}, sig.pcm, seed))
		if fast != full {
			t.Errorf("%s: %v with the shortcut, %v without", name, fast, full)
		}
	})
}

// steadyRun and quietRun compute what endSub, analyse, steadyWindow and decide would for the
// windows they take, and the steadiness probes give the same sums whenever they are measured: over
// every synthetic case of the conformance suite and the talk-down cases, the detections (times,
// levels and frequencies) and the window counters are the same to the bit with the runs and
// deferred probes, and without either.
func TestRuns(t *testing.T) {
	eachSynthetic(t, func(name string, rate int, sig signal, seed uint64) {
		cfg := Config{SampleRate: rate}
		got, dg := runWith(cfg, sig.pcm, seed, func(*Detector) {})
		want, dw := runWith(cfg, sig.pcm, seed, func(d *Detector) { d.noNext, d.eagerProbes = true, true })
		if !slices.Equal(got, want) || dg.stats != dw.stats {
			t.Errorf("%s: %v %+v, want %v %+v", name, got, dg.stats, want, dw.stats)
		}
	})
}

// steadyPowers gives the powers of the pair solve of steadyWindow (centring both bins and solving)
// to within rounding.
func TestSteadyPowers(t *testing.T) {
	pcm := Tones(allDigits, GenOptions{On: 200 * time.Millisecond, Off: 60 * time.Millisecond, Level: -20, Twist: 3})
	d := New(Config{})
	checked := 0
	for i := 0; i+subLen <= len(pcm); i += subLen {
		d.Process(nil, pcm[i:i+subLen])
		f := &d.ref
		if !f.valid || d.winXOf != d.nsub-1 {
			continue
		}
		ws := (d.nsub - winSubs) * subLen
		pw := phasePos(ws)
		pr, pc := d.steadyPowers(f.r, f.c, pw)
		xr := d.centre(f.r, complex(d.winRe[f.r], d.winIm[f.r]), pw)
		xc := d.centre(f.c, complex(d.winRe[f.c], d.winIm[f.c]), pw)
		ar := scale(xr, f.inv[0]) - scale(xc, f.inv[1])
		ac := scale(xc, f.inv[2]) - scale(xr, f.inv[3])
		wr := sq(real(ar)*winLen) + sq(imag(ar)*winLen)
		wc := sq(real(ac)*winLen) + sq(imag(ac)*winLen)
		if math.Abs(pr-wr) > 1e-12*wr || math.Abs(pc-wc) > 1e-12*wc {
			t.Fatalf("sub-block %d: powers %g, %g, want %g, %g", d.nsub, pr, pc, wr, wc)
		}
		checked++
	}
	if checked < 100 {
		t.Fatalf("only %d windows checked", checked)
	}
}
