package prompts_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/prompts"
)

// contractIDs are the prompt ids of DESIGN.md's external contract, in its order.
var contractIDs = []string{
	"welcome", "language_menu", "request_menu", "ask_account", "ask_dob", "ask_zip",
	"ask_ssn_last4", "ask_pin", "ask_last_payment", "ask_otp", "declaration", "invalid_input",
	"no_input", "verified", "not_verified", "locked_out", "opt_out_confirmed",
	"technical_difficulty", "goodbye",
}

var contractLocales = []string{prompts.EnUS, prompts.EsUS}

const maxPrompt = 12 * time.Second // the longest a caller should wait before keying in

func load(t testing.TB) *prompts.Catalog {
	t.Helper()
	c, err := prompts.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestContractPrompts(t *testing.T) {
	c := load(t)
	if got := c.Locales(); !slices.Equal(got, contractLocales) {
		t.Errorf("Locales() = %v, want %v", got, contractLocales)
	}
	// The contract's ids come first, in its order; the engine's further prompts follow.
	if got := c.IDs(); len(got) < len(contractIDs) || !slices.Equal(got[:len(contractIDs)], contractIDs) {
		t.Errorf("IDs() = %v, want the contract's %v first", got, contractIDs)
	}
	for _, locale := range contractLocales {
		for _, id := range c.IDs() {
			clip, err := c.Clip(locale, id)
			if err != nil {
				t.Errorf("Clip(%s, %s): %v", locale, id, err)
				continue
			}
			if clip.ID() != id {
				t.Errorf("Clip(%s, %s).ID() = %q", locale, id, clip.ID())
			}
			if d := clip.Duration(); d <= 0 || d > maxPrompt {
				t.Errorf("%s %s lasts %v: want between 0 and %v", locale, id, d, maxPrompt)
			}
			if c.Text(locale, id) == "" {
				t.Errorf("Text(%s, %s) is empty", locale, id)
			}
		}
	}
}

func TestLoadOnce(t *testing.T) {
	a, b := load(t), load(t)
	if a != b {
		t.Fatal("Load decoded the catalog twice; want one shared *Catalog")
	}
	x, _ := a.Clip(prompts.EnUS, "welcome")
	y, _ := b.Clip(prompts.EnUS, "welcome")
	if x != y {
		t.Fatal("Load returned different clips for the same prompt")
	}
}

// TestTexts checks that the words say what the flow expects the caller to key: the digits of
// every menu, the terminator where an entry has a variable length, the format of a date and
// of an amount, and the agent hand-off on the outcomes that transfer.
func TestTexts(t *testing.T) {
	c := load(t)
	pound := map[string]string{prompts.EnUS: "pound", prompts.EsUS: "numeral"}
	agent := map[string]string{prompts.EnUS: "agent", prompts.EsUS: "agente"}
	tests := []struct {
		id   string
		want func(locale string) []string
	}{
		{"language_menu", func(string) []string {
			return []string{"For English, press 1.", "Para español, oprima 2."}
		}},
		{"request_menu", func(string) []string { return []string{"1", "2", "3", "4", "5", "6", "7"} }},
		{"ask_account", func(l string) []string { return []string{pound[l]} }},
		{"ask_pin", func(l string) []string { return []string{pound[l]} }},
		{"ask_otp", func(l string) []string { return []string{pound[l]} }},
		{"ask_last_payment", func(l string) []string { return []string{pound[l], "125", "50", "1 2 5 5 0"} }},
		{"ask_dob", func(l string) []string {
			if l == prompts.EsUS {
				return []string{"mes", "día", "año de cuatro dígitos"}
			}
			return []string{"month", "day", "four-digit year"}
		}},
		{"ask_zip", func(l string) []string {
			if l == prompts.EsUS {
				return []string{"cinco dígitos"}
			}
			return []string{"five-digit"}
		}},
		{"declaration", func(l string) []string {
			if l == prompts.EsUS {
				return []string{"bajo pena de perjurio", "oprima 1", "oprima 2"}
			}
			return []string{"under penalty of perjury", "press 1", "press 2"}
		}},
		{"verified", func(l string) []string { return []string{agent[l]} }},
		{"locked_out", func(l string) []string { return []string{agent[l]} }},
		{"technical_difficulty", func(l string) []string { return []string{agent[l]} }},
	}
	for _, tt := range tests {
		for _, locale := range contractLocales {
			text := c.Text(locale, tt.id)
			for _, w := range tt.want(locale) {
				if !strings.Contains(text, w) {
					t.Errorf("%s %s: %q does not say %q", locale, tt.id, text, w)
				}
			}
		}
	}
	// The flow repeats these two before the question again; they must not ask anything.
	for _, locale := range contractLocales {
		for _, id := range []string{"invalid_input", "no_input"} {
			if d, _ := c.Clip(locale, id); d.Duration() > 4*time.Second {
				t.Errorf("%s %s lasts %v: a re-prompt preface should be short", locale, id, d.Duration())
			}
		}
	}
}

// TestAudioLevels checks every clip is speech at a telephony level: loud enough (RMS over the
// active part), not clipped (peak near the -3 dBFS the generator normalises to), sound for
// most of the clip, starting at once (leading silence trimmed) and ending in silence.
func TestAudioLevels(t *testing.T) {
	c := load(t)
	const (
		activeDB  = -40.0 // a 20 ms frame whose peak is above this is sound
		minRMSdB  = -32.0 // RMS over the whole clip
		maxPeakDB = -2.0
		minPeakDB = -6.0
	)
	for _, locale := range c.Locales() {
		for _, id := range c.IDs() {
			clip, _ := c.Clip(locale, id)
			pcm := clip.PCM()
			var sum float64
			peak := 0.0
			active, first, last := 0, -1, -1
			for f := 0; f < clip.Frames(); f++ {
				fp := 0.0
				for _, s := range pcm[f*media.FrameSamples : (f+1)*media.FrameSamples] {
					v := math.Abs(float64(s)) / 32768
					sum += v * v
					fp = max(fp, v)
				}
				peak = max(peak, fp)
				if dB(fp) > activeDB {
					active++
					if first < 0 {
						first = f
					}
					last = f
				}
			}
			rms := dB(math.Sqrt(sum / float64(len(pcm))))
			name := locale + "/" + id
			if rms < minRMSdB {
				t.Errorf("%s: RMS %.1f dBFS, want above %.0f (silent or far too quiet)", name, rms, minRMSdB)
			}
			if p := dB(peak); p > maxPeakDB || p < minPeakDB {
				t.Errorf("%s: peak %.1f dBFS, want between %.0f and %.0f", name, p, minPeakDB, maxPeakDB)
			}
			if frac := float64(active) / float64(clip.Frames()); frac < 0.6 {
				t.Errorf("%s: sound in %.0f%% of frames, want most of the clip to be speech", name, 100*frac)
			}
			if first > 2 {
				t.Errorf("%s: speech starts after %d ms of silence, want the lead trimmed", name, first*20)
			}
			if tail := clip.Frames() - 1 - last; tail < 3 || tail > 10 {
				t.Errorf("%s: %d ms of silence at the end, want about 100", name, tail*20)
			}
		}
	}
}

func dB(v float64) float64 { return 20 * math.Log10(max(v, 1e-9)) }

func TestClipErrors(t *testing.T) {
	c := load(t)
	tests := []struct {
		locale, id string
		want       error
	}{
		{prompts.EnUS, "welcome", nil},
		{prompts.EsUS, "goodbye", nil},
		{"fr-FR", "welcome", prompts.ErrUnknownLocale},
		{"en-us", "welcome", prompts.ErrUnknownLocale}, // canonical spelling only: use ParseLocale
		{"", "welcome", prompts.ErrUnknownLocale},
		{prompts.EnUS, "ask_favourite_pet", prompts.ErrUnknownPrompt},
		{prompts.EsUS, "", prompts.ErrUnknownPrompt},
	}
	for _, tt := range tests {
		clip, err := c.Clip(tt.locale, tt.id)
		if !errors.Is(err, tt.want) || (err == nil) != (clip != nil) {
			t.Errorf("Clip(%q, %q) = %v, %v; want error %v", tt.locale, tt.id, clip, err, tt.want)
		}
	}
	if got := c.Text("fr-FR", "welcome"); got != "" {
		t.Errorf("Text of an unknown locale = %q, want empty", got)
	}
	ids := c.IDs()
	ids[0] = "changed"
	if c.IDs()[0] != "welcome" {
		t.Error("IDs() exposes the catalog's own slice")
	}
}

func TestParseLocale(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"en-US", prompts.EnUS},
		{"en-us", prompts.EnUS},
		{"EN-US", prompts.EnUS},
		{"en", prompts.EnUS},
		{"EN", prompts.EnUS},
		{"es-US", prompts.EsUS},
		{"es-us", prompts.EsUS},
		{"Es-Us", prompts.EsUS},
		{"es", prompts.EsUS},
		{"", ""},
		{"fr-FR", ""},
		{"es-MX", ""},
		{"en_US", ""},
		{" en-US", ""},
		{"english", ""},
		{strings.Repeat("x", 1000), ""},
	}
	for _, tt := range tests {
		got, err := prompts.ParseLocale(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("ParseLocale(%.20q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if err != nil && !errors.Is(err, prompts.ErrUnknownLocale) {
			t.Errorf("ParseLocale(%.20q) error %v does not wrap ErrUnknownLocale", tt.in, err)
		}
		if err != nil && len(err.Error()) > 120 {
			t.Errorf("ParseLocale error repeats too much of its input: %d bytes", len(err.Error()))
		}
	}
}

// BenchmarkLoad measures what the first Load does at start-up: parse the catalog and decode
// every asset (Load itself decodes once and then returns the cached catalog).
func BenchmarkLoad(b *testing.B) {
	fsys := sourceFS(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := prompts.LoadFS(fsys); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClip measures a prompt lookup, which the flow does before every play.
func BenchmarkClip(b *testing.B) {
	c := load(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Clip(prompts.EsUS, "ask_last_payment"); err != nil {
			b.Fatal(err)
		}
	}
}
