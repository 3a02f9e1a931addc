//go:build spandsp && cgo

package dtmf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callproof/callproof/media/dtmf/internal/spandsp"
)

// The side-by-side comparison with spandsp 0.0.6 (dtmf.md §5.2, §5.4): every case of the
// conformance suite through both detectors on the 8 kHz paths, talk-off on the corpora plus
// 4.4 h of espeak-ng speech, and the CPU per 20 ms frame. It writes
// testdata/spandsp_comparison.md. Run it with
//
//	go test -tags spandsp -run TestSpandspComparison -timeout 30m ./media/dtmf/
//
// It needs libspandsp-dev (and pkg-config), sox and espeak-ng.

const comparisonFile = "testdata/spandsp_comparison.md"

var cmpPaths = []confPath{{"s16", 8000, linear}, {"ulaw", 8000, ulaw}, {"alaw", 8000, alaw}}

type cmpRow struct {
	c            *confCase
	ours, theirs map[string]score
	hours        float64
}

// spandspDetect runs spandsp over pcm in 20 ms chunks.
func spandspDetect(pcm []int16) []Detection {
	r := spandsp.New()
	defer r.Close()
	var out []Detection
	for _, d := range r.Flush(r.Process(nil, pcm, 160)) {
		out = append(out, Detection{Digit: d.Digit, Start: d.Start, Duration: d.Duration})
	}
	return out
}

// moreIsBetter lists the groups where finding more digits is better on every row.
var moreIsBetter = []string{"digits", "interruption", "noise", "dial tone", "third tone", "talk-down", "packet"}

func TestSpandspComparison(t *testing.T) {
	cases := allCases(t)
	espeak := espeakCorpus(t)
	cases = append(cases, &confCase{group: "talk-off", name: "espeak-ng, 8 voices reading the GPL", want: rejectAll, talkOff: true,
		paths: []string{"s16"}, build: func(int) signal { return signal{rate: 8000, pcm: espeak} }})
	var mu sync.Mutex
	var rows []*cmpRow
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			c := c
			row := &cmpRow{c: c, ours: map[string]score{}, theirs: map[string]score{}}
			mu.Lock()
			rows = append(rows, row)
			mu.Unlock()
			t.Run(c.group+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				for _, p := range cmpPaths {
					if len(c.paths) > 0 && !slices.Contains(c.paths, p.name) {
						continue
					}
					sig := c.build(8000)
					if p.codec != linear {
						sig.pcm = p.codec.apply(sig.pcm)
					}
					ours := grade(sig, detect(Config{}, sig.pcm, seedOf(c.group+c.name+p.name)))
					theirs := grade(sig, spandspDetect(sig.pcm))
					mu.Lock()
					row.ours[p.name], row.theirs[p.name] = ours, theirs
					row.hours = float64(len(sig.pcm)) / 8000 / 3600
					mu.Unlock()
					if msg := check(c, ours); msg != "" {
						t.Errorf("%s: ours: %s: %v", p.name, msg, ours)
					}
					if worse := worseThan(c, ours, theirs); worse != "" {
						t.Errorf("%s: worse than spandsp: %s (ours %v, spandsp %v)", p.name, worse, ours, theirs)
					}
				}
			})
		}
	})
	speed := measureSpeed(t)
	writeComparison(t, rows, speed)
}

// worseThan reports how ours is worse than spandsp's on a row, or "".
func worseThan(c *confCase, ours, theirs score) string {
	spur := func(s score) int { return s.wrong + s.extra + s.split }
	if spur(ours) > spur(theirs) && !c.spurious {
		return "more wrong, split or extra digits"
	}
	if c.want == rejectAll && ours.ok > theirs.ok {
		return "more digits where none are sent"
	}
	if (c.want == acceptAll || c.want == atLeast || slices.Contains(moreIsBetter, c.group)) && ours.ok < theirs.ok {
		return "fewer digits found"
	}
	return ""
}

// espeakCorpus synthesises (once, cached under the user cache directory) espeak-ng reading the
// GPL-3 text in eight voices (dtmf.md §6.2), resampled to 8 kHz by sox.
func espeakCorpus(t *testing.T) []int16 {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "callproof-dtmf", "espeak")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"en-us+m3", "en-us+f3", "en-gb+m1", "en-gb+f4", "de+m4", "fr+f2", "es+m7", "en-us+klatt"} {
		out := filepath.Join(dir, "espeak-"+v+".wav")
		if _, err := os.Stat(out); err == nil {
			continue
		}
		tmp := filepath.Join(dir, v+".22k.wav")
		if b, err := exec.Command("espeak-ng", "-v", v, "-f", "/usr/share/common-licenses/GPL-3", "-w", tmp).CombinedOutput(); err != nil {
			t.Fatalf("espeak-ng (apt-get install espeak-ng): %v %s", err, b)
		}
		if b, err := exec.Command("sox", "-R", "-D", tmp, "-r", "8000", "-b", "16", "-c", "1", "-t", "wav", out+".part").CombinedOutput(); err != nil {
			t.Fatalf("sox (apt-get install sox): %v %s", err, b)
		}
		os.Remove(tmp)
		if err := os.Rename(out+".part", out); err != nil {
			t.Fatal(err)
		}
	}
	return mustCorpus(t, corpus{"espeak", dir, "espeak-ng"})
}

type speedRow struct {
	name         string
	ours, theirs time.Duration // per 20 ms frame
}

// measureSpeed times both detectors frame by frame over the same audio.
func measureSpeed(t *testing.T) []speedRow {
	speech := mustCorpus(t, corpora[0])[:8000*120]
	tones := Tones(strings.Repeat(allDigits, 8), GenOptions{On: 60 * time.Millisecond, Off: 60 * time.Millisecond})
	var out []speedRow
	for _, in := range []struct {
		name string
		pcm  []int16
	}{{"speech (2 min)", speech}, {"digits, 60/60 ms", tones}} {
		frames := len(in.pcm) / 160
		best := func(run func()) time.Duration {
			var b time.Duration
			for i := 0; i < 5; i++ {
				t0 := time.Now()
				run()
				if d := time.Since(t0); b == 0 || d < b {
					b = d
				}
			}
			return b / time.Duration(frames)
		}
		ours := best(func() {
			d := New(Config{})
			var dst []byte
			for i := 0; i+160 <= len(in.pcm); i += 160 {
				dst = d.Process(dst[:0], in.pcm[i:i+160])
			}
		})
		theirs := best(func() {
			r := spandsp.New()
			r.Process(nil, in.pcm, 160)
			r.Close()
		})
		out = append(out, speedRow{in.name, ours, theirs})
	}
	return out
}

func writeComparison(t *testing.T, rows []*cmpRow, speed []speedRow) {
	order := map[*confCase]int{}
	for i, r := range rows {
		i := i
		if r.c.group == "talk-down" || r.c.group == "talk-off" {
			i += len(rows)
		}
		order[r.c] = i
	}
	sort.Slice(rows, func(i, j int) bool { return order[rows[i].c] < order[rows[j].c] })
	var b strings.Builder
	fmt.Fprintf(&b, "# media/dtmf vs spandsp %s\n\n", "0.0.6 (Debian libspandsp-dev, default parameters, 20 ms chunks)")
	b.WriteString("Produced by `go test -tags spandsp -run TestSpandspComparison -timeout 30m ./media/dtmf/`.\n")
	b.WriteString("Each cell: digits found exactly once with the right symbol / digits sent (misses, wrong, split, extra). ")
	b.WriteString("Talk-off cells: false digits (per hour). ")
	b.WriteString("Starts are jittered over a whole 102-sample block, levels are per tone, SNR is total DTMF power against noise in 0-4 kHz.\n\n")
	b.WriteString("| group | case | expect | ours s16 | spandsp s16 | ours μ-law | spandsp μ-law | ours A-law | spandsp A-law |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |", r.c.group, r.c.name, r.c.want)
		for _, p := range cmpPaths {
			for _, m := range []map[string]score{r.ours, r.theirs} {
				s, ok := m[p.name]
				switch {
				case !ok:
					b.WriteString(" — |")
				case r.c.talkOff:
					fmt.Fprintf(&b, " %d (%.1f/h) |", s.extra, float64(s.extra)/r.hours)
				default:
					fmt.Fprintf(&b, " %s |", s)
				}
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n## CPU per 20 ms frame (160 samples), same machine, same audio\n\n| audio | media/dtmf | spandsp |\n|---|---|---|\n")
	for _, s := range speed {
		fmt.Fprintf(&b, "| %s | %.2f µs | %.2f µs |\n", s.name, float64(s.ours.Nanoseconds())/1000, float64(s.theirs.Nanoseconds())/1000)
	}
	if err := os.WriteFile(comparisonFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", comparisonFile)
}

// BenchmarkSpandsp8k is spandsp on the input of BenchmarkDetector8k, one 20 ms frame per op.
func BenchmarkSpandsp8k(b *testing.B) {
	pcm := benchAudio(8000)
	r := spandsp.New()
	defer r.Close()
	var dst []spandsp.Digit
	for i := 0; b.Loop(); i++ {
		off := (i * 160) % (len(pcm) - 160)
		dst = r.Process(dst[:0], pcm[off:off+160], 160)
	}
}
