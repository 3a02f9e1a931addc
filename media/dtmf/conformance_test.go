package dtmf

import (
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The conformance suite of dtmf.md §6: every case is named, runs through four paths (8 kHz
// PCM16, μ-law and A-law round trips, and native 16 kHz), with each digit's start jittered over
// a whole analysis block and the audio fed in blocks of random size (seeded by the case name).
// Where ITU-T Q.24 (AT&T column) or ETSI ES 201 235-3 is firm the case asserts; elsewhere it
// records. Run with -dtmf.report=FILE to write the results as a markdown table; talk-off rows
// give false digits per hour and two near-miss rates (a talk-off margin): candidates that
// lasted MinDuration but were stopped only by the steadiness test ("blocked"), and runs of at
// least one passing window ("runs").

var reportFile = flag.String("dtmf.report", "", "write the conformance results as markdown to this file")

type confPath struct {
	name  string
	rate  int
	codec codec
}

var confPaths = []confPath{{"s16", 8000, linear}, {"ulaw", 8000, ulaw}, {"alaw", 8000, alaw}, {"16k", 16000, linear}}

type expect int

const (
	record    expect = iota // report only; no spurious digits
	acceptAll               // every digit exactly once, nothing else
	rejectAll               // no detection at all
	atLeast                 // at least min digits exactly once, nothing spurious
)

func (e expect) String() string { return [...]string{"record", "accept", "reject", "at least"}[e] }

type confCase struct {
	group, name string
	want        expect
	min         int // for atLeast
	build       func(rate int) signal
	spurious    bool     // for record: wrong/extra digits are tolerated (noise at very low SNR)
	talkOff     bool     // a corpus with no digits: report false digits and near misses per hour
	paths       []string // the paths to run (all when empty)
}

// confResults collects the rows of the report.
type confResults struct {
	mu   sync.Mutex
	rows map[string]map[string]score // "group\tname\texpect" -> path -> score
	hour map[string]float64          // talk-off rows (key + "\t" + path): hours of audio
	near map[string][2]uint64        // talk-off rows: candidates blocked by the steadiness test, candidate runs
}

var results = confResults{rows: map[string]map[string]score{}, hour: map[string]float64{}, near: map[string][2]uint64{}}

func (r *confResults) add(c *confCase, path string, s score) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := c.group + "\t" + c.name + "\t" + c.want.String()
	if r.rows[k] == nil {
		r.rows[k] = map[string]score{}
	}
	r.rows[k][path] = s
}

func (r *confResults) talkOff(c *confCase, path string, hours float64, near [2]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := c.group + "\t" + c.name + "\t" + c.want.String() + "\t" + path
	r.hour[k] = hours
	r.near[k] = near
}

func seedOf(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// conformanceCases lists every synthetic case.
func conformanceCases() []*confCase {
	var cs []*confCase
	add := func(group, name string, want expect, build func(rate int) signal) *confCase {
		c := &confCase{group: group, name: name, want: want, build: build}
		cs = append(cs, c)
		return c
	}
	seq := func(s seqSpec) func(int) signal {
		return func(rate int) signal {
			s.rate, s.jitter = rate, true
			return s.build()
		}
	}

	// 1. Every digit, ten times (the Mitel decode check).
	add("digits", "all 16 ×10, 50/50 ms, −10 dBm0", acceptAll, seq(seqSpec{repeat: 10}))

	// 2. Tone duration: Q.24 AT&T must accept ≥ 40 ms, must reject ≤ 23 ms.
	for _, on := range []int{10, 15, 20, 23, 25, 30, 35, 40, 45, 50, 60, 100, 500, 2000} {
		want := record
		if on <= 23 {
			want = rejectAll
		} else if on >= 40 {
			want = acceptAll
		}
		s := seqSpec{on: ms(on), repeat: 3}
		if on >= 500 {
			s = seqSpec{on: ms(on), off: ms(100), digits: allDigits[:min(16, 8000/on)]}
		}
		add("duration", fmt.Sprintf("on %d ms", on), want, seq(s))
	}

	// 3. Pauses: ≥ 40 ms must separate digits (same digit repeated, and all digits).
	for _, off := range []int{10, 15, 20, 25, 30, 40, 50, 100} {
		want := record
		if off >= 40 {
			want = acceptAll
		}
		add("pause", fmt.Sprintf("same digit, gap %d ms", off), want, seq(seqSpec{digits: "555555555555", off: ms(off)}))
		add("pause", fmt.Sprintf("different digits, gap %d ms", off), want, seq(seqSpec{off: ms(off), repeat: 2}))
	}

	// 4. Interruptions inside a 120 ms tone: AT&T ≤ 10 ms, ETSI < 20 ms must not split; we
	// bridge 20 ms (one lost RTP packet) and record 30 ms.
	for _, hole := range []int{2, 5, 10, 15, 20, 30} {
		want := acceptAll
		if hole > 20 {
			want = record
		}
		add("interruption", fmt.Sprintf("%d ms zeroed", hole), want, seq(seqSpec{on: ms(120), holeAt: ms(50), holeLen: ms(hole), repeat: 2}))
		add("interruption", fmt.Sprintf("%d ms at −20 dB", hole), want, seq(seqSpec{on: ms(120), holeAt: ms(50), holeLen: ms(hole), holeGain: 0.1, repeat: 2}))
	}

	// 5. Frequency offsets: accept ≤ 1.5 % + 2 Hz, reject ≥ 3.5 %, on either, both (same way)
	// or both (opposite ways).
	type off struct {
		name string
		rel  float64
		hz   float64
	}
	var offs []off
	for _, p := range []float64{1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0} {
		offs = append(offs, off{fmt.Sprintf("+%.1f%%", p), p / 100, 0}, off{fmt.Sprintf("−%.1f%%", p), -p / 100, 0})
		if p == 1.5 {
			offs = append(offs, off{"+1.5%+2Hz", 0.015, 2}, off{"−1.5%−2Hz", -0.015, -2})
		}
	}
	for _, o := range offs {
		want := record
		if math.Abs(o.rel) <= 0.015 {
			want = acceptAll
		} else if math.Abs(o.rel) >= 0.035 {
			want = rejectAll
		}
		o := o
		add("frequency", "low "+o.name, want, seq(seqSpec{lowOff: o.rel, lowHz: o.hz, repeat: 2}))
		add("frequency", "high "+o.name, want, seq(seqSpec{highOff: o.rel, highHz: o.hz, repeat: 2}))
		add("frequency", "both "+o.name, want, seq(seqSpec{lowOff: o.rel, lowHz: o.hz, highOff: o.rel, highHz: o.hz, repeat: 2}))
		add("frequency", "opposite "+o.name, want, seq(seqSpec{lowOff: o.rel, lowHz: o.hz, highOff: -o.rel, highHz: -o.hz, repeat: 2}))
	}

	// 6. Twist: accept 8 dB normal (low louder) and 4 dB reverse.
	for tw := 0; tw <= 12; tw++ {
		want := record
		if tw <= 8 {
			want = acceptAll
		}
		add("twist", fmt.Sprintf("normal %d dB", tw), want, seq(seqSpec{twist: float64(tw), repeat: 2}))
	}
	for tw := 1; tw <= 8; tw++ {
		want := record
		if tw <= 4 {
			want = acceptAll
		}
		add("twist", fmt.Sprintf("reverse %d dB", tw), want, seq(seqSpec{twist: -float64(tw), repeat: 2}))
	}

	// 7. Level per tone, +3 to −50 dBm0: accept −3 to −36 (AT&T asks 0 to −25), reject −50.
	for l := 3; l >= -50; l-- {
		want := record
		if l <= -3 && l >= -36 {
			want = acceptAll
		} else if l <= -50 {
			want = rejectAll
		}
		add("level", fmt.Sprintf("%+d dBm0", l), want, seq(seqSpec{level: float64(l) + negZero}))
	}

	// 8. White Gaussian noise; SNR is the total DTMF power (two tones at −10 dBm0) against the
	// noise power in 0-4 kHz. Bell: all digits at ≥ 15 dB.
	for _, snr := range []float64{30, 24, 20, 18, 15, 12, 10, 8, 6, 3} {
		want := record
		if snr >= 15 {
			want = acceptAll
		}
		c := add("noise", fmt.Sprintf("SNR %g dB", snr), want, func(rate int) signal {
			sig := seqSpec{repeat: 4, rate: rate, jitter: true}.build()
			p := dBm0Power * math.Pow(10, (-6.99-snr)/10) * float64(rate) / 8000
			sig.pcm = mix(sig.pcm, whiteNoise(len(sig.pcm), math.Sqrt(p), seedOf("noise")), 1)
			return sig
		})
		c.spurious = snr < 6
	}

	// 9. Dial tone (350+440 Hz, continuous) under digits at −25 dBm0 per tone: recorded (no
	// firm requirement; an inbound IVR leg carries no dial tone).
	for _, dt := range []int{-40, -35, -30, -25, -20, -15, -10, -5, 0} {
		add("dial tone", fmt.Sprintf("dial tone %d dBm0/tone", dt), record, func(rate int) signal {
			sig := seqSpec{level: -25, repeat: 2, rate: rate, jitter: true}.build()
			sig.pcm = mix(sig.pcm, tones(len(sig.pcm), rate, tone{350, float64(dt)}, tone{440, float64(dt)}), 1)
			return sig
		})
	}

	// 10. A third tone at 500, 1000, 2000 or 3000 Hz relative to the (equal) DTMF tones:
	// MT8870-class receivers tolerate −16 dB.
	for _, hz := range []float64{500, 1000, 2000, 3000} {
		for _, rel := range []int{-26, -20, -16, -14, -12, -10} {
			want := record
			if rel <= -16 {
				want = acceptAll
			}
			add("third tone", fmt.Sprintf("%g Hz at %d dB", hz, rel), want, func(rate int) signal {
				sig := seqSpec{repeat: 2, rate: rate, jitter: true}.build()
				sig.pcm = mix(sig.pcm, tones(len(sig.pcm), rate, tone{hz, -10 + float64(rel)}), 1)
				return sig
			})
		}
	}

	// 11. Signals that are not DTMF must give nothing.
	silence := func(rate int, parts ...[]float64) signal {
		var all []float64
		for _, p := range parts {
			all = append(all, p...)
			all = append(all, make([]float64, rate/5)...)
		}
		return signal{rate: rate, pcm: toPCM(all)}
	}
	for _, f := range toneHz {
		add("non-DTMF", fmt.Sprintf("%g Hz alone, −4 dBm0", f), rejectAll, func(rate int) signal {
			return silence(rate, tones(rate/2, rate, tone{f, -4}))
		})
	}
	for _, rel := range []float64{-0.10, -0.05, 0.05, 0.10} {
		add("non-DTMF", fmt.Sprintf("all pairs at %+.0f%%", rel*100), rejectAll, func(rate int) signal {
			var parts [][]float64
			for r := 0; r < 4; r++ {
				for c := 4; c < 8; c++ {
					lo, hi := toneHz[r]*(1+rel), toneHz[c]*(1+rel)
					if nearDTMF(lo) || nearDTMF(hi) {
						continue // a 10 % shift can land on another DTMF frequency
					}
					parts = append(parts, tones(rate/10, rate, tone{lo, -10}, tone{hi, -10}))
				}
			}
			return silence(rate, parts...)
		})
	}
	cp := []struct {
		name string
		ts   []tone
	}{
		{"dial 350+440", []tone{{350, -13}, {440, -13}}},
		{"ringback 440+480", []tone{{440, -19}, {480, -19}}},
		{"busy 480+620", []tone{{480, -24}, {620, -24}}},
		{"UK ringback 400+450", []tone{{400, -10}, {450, -10}}},
		{"European 425", []tone{{425, -10}}},
		{"SIT 950", []tone{{950, -10}}},
		{"SIT 1400", []tone{{1400, -10}}},
		{"SIT 1800", []tone{{1800, -10}}},
		{"1400+2060", []tone{{1400, -10}, {2060, -10}}},
		{"950+1400", []tone{{950, -10}, {1400, -10}}},
		{"fax CNG 1100", []tone{{1100, -10}}},
		{"fax/modem CED 2100", []tone{{2100, -10}}},
		{"Bell 103 1270+2225", []tone{{1270, -10}, {2225, -10}}},
	}
	for _, c := range cp {
		add("non-DTMF", c.name+", 1 s", rejectAll, func(rate int) signal { return silence(rate, tones(rate, rate, c.ts...)) })
	}
	add("non-DTMF", "sweep 300-3400 Hz in 2 s, −4 dBm0", rejectAll, func(rate int) signal {
		n := 2 * rate
		x := make([]float64, n)
		ph := 0.0
		for i := range x {
			f := 300 + 3100*float64(i)/float64(n)
			ph += 2 * math.Pi * f / float64(rate)
			x[i] = Amplitude(-4) * math.Sin(ph)
		}
		return silence(rate, x)
	})
	// 12. Packet and clock effects.
	add("packet", "20 ms frame lost mid-digit", acceptAll, seq(seqSpec{on: ms(100), holeAt: ms(40), holeLen: ms(20), repeat: 2}))
	for _, slip := range []int{-1, 1} {
		add("packet", fmt.Sprintf("sample slip %+d mid-digit", slip), acceptAll, func(rate int) signal {
			sig := seqSpec{on: ms(80), repeat: 2, rate: rate, jitter: true}.build()
			out := make([]int16, 0, len(sig.pcm)+len(sig.truth))
			prev, acc := 0, 0
			for i := range sig.truth {
				tr := &sig.truth[i]
				mid := (tr.start + tr.end) / 2
				out = append(out, sig.pcm[prev:mid]...)
				tr.start += acc
				if slip > 0 {
					out = append(out, sig.pcm[mid]) // the sample is repeated
					prev = mid
				} else {
					prev = mid + 1 // the sample is lost
				}
				acc += slip
				tr.end += acc
			}
			sig.pcm = append(out, sig.pcm[prev:]...)
			return sig
		})
	}
	for _, dc := range []float64{-1000, 1000} {
		add("packet", fmt.Sprintf("DC offset %+g", dc), acceptAll, func(rate int) signal {
			sig := seqSpec{repeat: 2, rate: rate, jitter: true}.build()
			for i := range sig.pcm {
				sig.pcm[i] = clip16(float64(sig.pcm[i]) + dc)
			}
			return sig
		})
	}
	for _, f := range []float64{0.99, 1.01} {
		add("packet", fmt.Sprintf("clock ×%.2f", f), acceptAll, seq(seqSpec{lowOff: f - 1, highOff: f - 1,
			on: time.Duration(float64(ms(50)) / f), off: time.Duration(float64(ms(50)) / f), repeat: 2}))
	}
	return cs
}

// nearDTMF tells whether hz is within 3.5 % of a DTMF frequency.
func nearDTMF(hz float64) bool {
	for _, f := range toneHz {
		if math.Abs(hz-f) <= 0.035*f {
			return true
		}
	}
	return false
}

func TestConformance(t *testing.T) {
	t.Cleanup(func() { writeReport(t) })
	for _, c := range allCases(t) {
		c := c
		t.Run(c.group+"/"+c.name, func(t *testing.T) {
			t.Parallel()
			for _, p := range confPaths {
				if len(c.paths) > 0 && !slices.Contains(c.paths, p.name) {
					continue
				}
				sig := c.build(p.rate)
				if p.codec != linear {
					sig.pcm = p.codec.apply(sig.pcm)
				}
				got, st := detectStats(Config{SampleRate: p.rate}, sig.pcm, seedOf(c.group+c.name+p.name))
				s := grade(sig, got)
				results.add(c, p.name, s)
				if c.talkOff {
					results.talkOff(c, p.name, float64(len(sig.pcm))/float64(p.rate)/3600, [2]uint64{st.blocked, st.candidates})
				}
				if msg := check(c, s); msg != "" {
					t.Errorf("%s: %s: %v (detected %q)", p.name, msg, s, digitsOf(got))
				}
			}
		})
	}
}

// check returns why a score fails the case's expectation, or "".
func check(c *confCase, s score) string {
	spurious := s.wrong + s.extra + s.split
	switch c.want {
	case acceptAll:
		if s.ok != s.sent || spurious > 0 {
			return "must detect every digit exactly once"
		}
	case rejectAll:
		if s.ok+spurious > 0 {
			return "must detect nothing"
		}
	case atLeast:
		if s.ok < c.min || spurious > 0 {
			return fmt.Sprintf("must detect at least %d digits and nothing spurious", c.min)
		}
	default:
		if spurious > 0 && !c.spurious {
			return "must not report wrong, split or extra digits"
		}
	}
	return ""
}

// writeReport writes the results table when -dtmf.report is set, and logs a summary.
func writeReport(t *testing.T) {
	results.mu.Lock()
	defer results.mu.Unlock()
	keys := make([]string, 0, len(results.rows))
	for k := range results.rows {
		keys = append(keys, k)
	}
	order := map[string]int{}
	all := allCases(t)
	for i, c := range all {
		if c.group == "talk-down" || c.group == "talk-off" {
			i += len(all) // last in the report
		}
		order[c.group+"\t"+c.name+"\t"+c.want.String()] = i
	}
	sort.Slice(keys, func(i, j int) bool { return order[keys[i]] < order[keys[j]] })
	var b strings.Builder
	b.WriteString("# media/dtmf conformance (dtmf.md §6)\n\nProduced by `go test -run TestConformance ./media/dtmf/ -args -dtmf.report=$PWD/media/dtmf/testdata/conformance.md`.\n")
	b.WriteString("Each cell: digits found exactly once with the right symbol / digits sent (misses, wrong, split, extra). ")
	b.WriteString("Digit starts are jittered over a whole 102-sample block and audio is fed in random blocks of 1-480 samples. ")
	b.WriteString("Levels are per tone in dBm0 (full-scale sine = +3.14 dBm0); SNR is total DTMF power against noise in 0-4 kHz; ")
	b.WriteString("talk-down speech is at −12 dBm0 long-term at 0 dB. Talk-off cells: false digits (per hour); near misses per hour: ")
	b.WriteString("candidates stopped only by the steadiness test (blocked) and runs of at least one passing window (runs).\n\n")
	b.WriteString("| group | case | expect | s16 | μ-law | A-law | 16 kHz |\n|---|---|---|---|---|---|---|\n")
	for _, k := range keys {
		f := strings.Split(k, "\t")
		row := results.rows[k]
		fmt.Fprintf(&b, "| %s | %s | %s |", f[0], f[1], f[2])
		for _, p := range confPaths {
			s, ok := row[p.name]
			if !ok {
				b.WriteString(" — |")
				continue
			}
			if h := results.hour[k+"\t"+p.name]; h > 0 {
				n := results.near[k+"\t"+p.name]
				fmt.Fprintf(&b, " %d false (%.1f/h); near: %.0f/h blocked, %.0f/h runs |", s.extra, float64(s.extra)/h, float64(n[0])/h, float64(n[1])/h)
				continue
			}
			fmt.Fprintf(&b, " %s |", s)
		}
		b.WriteString("\n")
	}
	if *reportFile != "" {
		if err := os.WriteFile(*reportFile, []byte(b.String()), 0o644); err != nil {
			t.Errorf("writing report: %v", err)
		}
	}
}
