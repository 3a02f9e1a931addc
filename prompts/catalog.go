package prompts

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/go-audio/audio"
	"github.com/go-audio/wav"
	"go.yaml.in/yaml/v3"

	"github.com/callproof/callproof/media"
)

// The locales every Callproof catalog has, in their canonical spelling.
const (
	EnUS = "en-US"
	EsUS = "es-US"
)

// Layout of a catalog file system (the embedded one, or the one given to LoadFS).
const (
	catalogFile = "catalog.yaml"
	assetsDir   = "assets"
)

//go:embed catalog.yaml assets
var embedded embed.FS

// loadEmbedded decodes the embedded catalog on first use; the result is immutable and shared,
// so every clip (and every adapter's cached wire form of it) exists once per process.
var loadEmbedded = sync.OnceValues(func() (*Catalog, error) { return LoadFS(embedded) })

// Catalog is a decoded prompt catalog: a text and a clip per prompt id and locale. It is
// immutable and safe for concurrent use.
type Catalog struct {
	ids     []string
	locales []string
	entries map[entryKey]entry
}

type entryKey struct{ locale, id string }

type entry struct {
	text string
	clip *media.Clip
}

// Load returns the catalog built into the binary. The first call decodes every asset; later
// calls return the same *Catalog (or the same error).
func Load() (*Catalog, error) { return loadEmbedded() }

// LoadFS decodes a catalog from fsys, which holds catalog.yaml and assets/<locale>/<id>.wav
// for every prompt id and locale of the catalog. Files under assets/ other than WAV files
// directly in a locale folder are allowed only if their name ends in ".md" (documentation).
// Every problem found is reported (errors.Join), each wrapping ErrBadCatalog or ErrBadAsset
// and naming the file.
func LoadFS(fsys fs.FS) (*Catalog, error) {
	raw, err := fs.ReadFile(fsys, catalogFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCatalog, err)
	}
	c, err := parseCatalog(raw)
	if err != nil {
		return nil, err
	}

	var errs []error
	found := make(map[string]bool) // asset paths present
	walkErr := fs.WalkDir(fsys, assetsDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == assetsDir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll // reported below as missing assets
			}
			return err
		}
		if d.IsDir() {
			if p != assetsDir && path.Dir(p) == assetsDir && !c.hasLocale(d.Name()) {
				errs = append(errs, fmt.Errorf("%w: %s: folder for a locale the catalog does not have", ErrBadCatalog, p))
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".md") {
			return nil
		}
		locale, id := path.Base(path.Dir(p)), strings.TrimSuffix(path.Base(p), ".wav")
		if _, ok := c.entries[entryKey{locale, id}]; !ok || path.Dir(path.Dir(p)) != assetsDir || !strings.HasSuffix(p, ".wav") {
			errs = append(errs, fmt.Errorf("%w: %s: no catalog entry for this file (want %s/<locale>/<id>.wav)", ErrBadCatalog, p, assetsDir))
			return nil
		}
		found[p] = true
		return nil
	})
	if walkErr != nil {
		errs = append(errs, fmt.Errorf("%w: %s: %w", ErrBadCatalog, assetsDir, walkErr))
	}

	for _, id := range c.ids {
		for _, locale := range c.locales {
			p := assetPath(locale, id)
			if !found[p] {
				errs = append(errs, fmt.Errorf("%w: %s: missing asset for prompt %q in %s", ErrBadCatalog, p, id, locale))
				continue
			}
			clip, err := decodeAsset(fsys, p, id)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			k := entryKey{locale, id}
			e := c.entries[k]
			e.clip = clip
			c.entries[k] = e
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// Clip returns the audio of prompt id in locale (a canonical locale, as ParseLocale returns).
// It fails with ErrUnknownLocale or ErrUnknownPrompt.
func (c *Catalog) Clip(locale, id string) (*media.Clip, error) {
	if e, ok := c.entries[entryKey{locale, id}]; ok {
		return e.clip, nil
	}
	if !c.hasLocale(locale) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownLocale, clamp(locale))
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownPrompt, clamp(id))
}

// Text returns the words of prompt id in locale, or "" if the catalog has no such prompt.
// A bilingual prompt's parts are joined with a space.
func (c *Catalog) Text(locale, id string) string {
	return c.entries[entryKey{locale, id}].text
}

// IDs returns every prompt id, in catalog order.
func (c *Catalog) IDs() []string { return append([]string(nil), c.ids...) }

// Locales returns every locale, in catalog order; the first is the default.
func (c *Catalog) Locales() []string { return append([]string(nil), c.locales...) }

func (c *Catalog) hasLocale(locale string) bool { return slices.Contains(c.locales, locale) }

// ParseLocale maps a caller's or platform's language tag to a canonical Callproof locale:
// en-US or es-US in any letter case, or the bare language "en" or "es". Anything else is
// ErrUnknownLocale.
func ParseLocale(s string) (string, error) {
	switch strings.ToLower(s) {
	case "en-us", "en":
		return EnUS, nil
	case "es-us", "es":
		return EsUS, nil
	}
	return "", fmt.Errorf("%w: %q: want en-US or es-US", ErrUnknownLocale, clamp(s))
}

// clamp bounds how much of a peer's string an error message repeats.
func clamp(s string) string {
	const max = 32
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

func assetPath(locale, id string) string { return path.Join(assetsDir, locale, id+".wav") }

// --- catalog.yaml ----------------------------------------------------------------------------

type catalogYAML struct {
	Locales []struct {
		ID    string `yaml:"id"`
		Voice string `yaml:"voice"` // espeak-ng voice, used by scripts/gen-prompts.sh
		Speed int    `yaml:"speed"` // espeak-ng words per minute, ditto
	} `yaml:"locales"`
	Prompts []struct {
		ID   string            `yaml:"id"`
		Text map[string]spoken `yaml:"text"`
	} `yaml:"prompts"`
}

// spoken is a prompt's text in one locale: a plain string, spoken by the locale's own voice,
// or a list of one-key maps {locale: words}, each part spoken by that locale's voice.
type spoken []part

type part struct{ locale, words string }

func (s *spoken) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*s = spoken{{words: n.Value}}
		return nil
	case yaml.SequenceNode:
		for _, item := range n.Content {
			if item.Kind != yaml.MappingNode || len(item.Content) != 2 || item.Content[1].Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: a part is a one-key map locale: words", item.Line)
			}
			*s = append(*s, part{locale: item.Content[0].Value, words: item.Content[1].Value})
		}
		return nil
	}
	return fmt.Errorf("line %d: a text is a string or a list of locale: words parts", n.Line)
}

var (
	idPattern     = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	localePattern = regexp.MustCompile(`^[a-z]{2}-[A-Z]{2}$`)
)

func parseCatalog(raw []byte) (*Catalog, error) {
	var doc catalogYAML
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadCatalog, catalogFile, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadCatalog, catalogFile, fmt.Sprintf(format, args...))
	}
	if len(doc.Locales) == 0 || len(doc.Prompts) == 0 {
		return nil, bad("needs at least one locale and one prompt")
	}
	c := &Catalog{entries: make(map[entryKey]entry)}
	for _, l := range doc.Locales {
		if !localePattern.MatchString(l.ID) || c.hasLocale(l.ID) {
			return nil, bad("locale %q: want a unique tag like en-US", l.ID)
		}
		c.locales = append(c.locales, l.ID)
	}
	seen := make(map[string]bool)
	for _, p := range doc.Prompts {
		if !idPattern.MatchString(p.ID) || seen[p.ID] {
			return nil, bad("prompt id %q: want a unique lower-case id like ask_pin", p.ID)
		}
		seen[p.ID] = true
		c.ids = append(c.ids, p.ID)
		for locale := range p.Text {
			if !c.hasLocale(locale) {
				return nil, bad("prompt %s: text for unknown locale %q", p.ID, locale)
			}
		}
		for _, locale := range c.locales {
			text, ok := p.Text[locale]
			if !ok || len(text) == 0 {
				return nil, bad("prompt %s: no text for %s", p.ID, locale)
			}
			words := make([]string, 0, len(text))
			for _, pt := range text {
				if pt.locale != "" && !c.hasLocale(pt.locale) {
					return nil, bad("prompt %s %s: part spoken in unknown locale %q", p.ID, locale, pt.locale)
				}
				w := strings.Join(strings.Fields(pt.words), " ")
				if w == "" {
					return nil, bad("prompt %s %s: empty text", p.ID, locale)
				}
				words = append(words, w)
			}
			c.entries[entryKey{locale, p.ID}] = entry{text: strings.Join(words, " ")}
		}
	}
	return c, nil
}

// --- assets ----------------------------------------------------------------------------------

const wavFormatPCM = 1 // WAVE_FORMAT_PCM

// decodeAsset reads one WAV file and turns it into a clip. It accepts only what the media
// path plays without conversion: 8 kHz, mono, 16-bit linear PCM, complete.
func decodeAsset(fsys fs.FS, p, id string) (_ *media.Clip, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadAsset, p, fmt.Sprintf(format, args...))
	}
	defer func() { // go-audio/wav trusts chunk headers; a mangled one must not take the process down
		if r := recover(); r != nil {
			err = bad("malformed WAV: %v", r)
		}
	}()
	data, err := fs.ReadFile(fsys, p)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadAsset, p, err)
	}
	r := bytes.NewReader(data)
	d := wav.NewDecoder(r)
	d.ReadInfo()
	if err := d.Err(); err != nil {
		return nil, bad("not a WAV file: %v", err)
	}
	if d.NumChans == 0 {
		return nil, bad("not a WAV file: no RIFF WAVE header with a fmt chunk")
	}
	if d.WavAudioFormat != wavFormatPCM || d.SampleRate != media.SampleRate || d.NumChans != 1 || d.BitDepth != 16 {
		return nil, bad("format %d, %d Hz, %d channel(s), %d-bit: want PCM (1), %d Hz, mono, 16-bit",
			d.WavAudioFormat, d.SampleRate, d.NumChans, d.BitDepth, media.SampleRate)
	}
	if err := d.FwdToPCM(); err != nil || d.PCMChunk == nil {
		return nil, bad("no data chunk")
	}
	// The decoder reads the data chunk straight from r, so what is left in r is what the file
	// really holds; the decoder itself stops quietly at the end of a short file.
	if d.PCMSize%2 != 0 || r.Len() < d.PCMSize {
		return nil, bad("truncated: data chunk declares %d bytes, file holds %d", d.PCMSize, r.Len())
	}
	buf := &audio.IntBuffer{Data: make([]int, d.PCMSize/2)}
	n, err := d.PCMBuffer(buf) // one read of the whole chunk, decoded in place
	if err != nil {
		return nil, bad("reading samples: %v", err)
	}
	if n != len(buf.Data) {
		return nil, bad("truncated: data chunk declares %d samples, decoded %d", len(buf.Data), n)
	}
	pcm := make([]int16, len(buf.Data))
	for i, v := range buf.Data {
		pcm[i] = int16(v)
	}
	clip, err := media.NewClip(id, pcm)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadAsset, p, err)
	}
	return clip, nil
}
