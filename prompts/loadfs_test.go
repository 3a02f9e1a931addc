package prompts_test

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/prompts"
)

// sourceFS copies the package's catalog and assets (what go:embed holds) into memory.
func sourceFS(tb testing.TB) fstest.MapFS {
	tb.Helper()
	m := fstest.MapFS{}
	src := os.DirFS(".")
	for _, root := range []string{"catalog.yaml", "assets"} {
		err := fs.WalkDir(src, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(src, p)
			m[p] = &fstest.MapFile{Data: data}
			return err
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return m
}

// makeWAV builds a canonical 44-byte-header WAV file.
func makeWAV(format, channels uint16, rate uint32, bits uint16, samples int) []byte {
	block := channels * bits / 8
	data := make([]byte, samples*int(block))
	for i := range data {
		data[i] = byte(i * 37) // anything but silence
	}
	h := make([]byte, 0, 44+len(data))
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(36+len(data)))
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, format)
	h = binary.LittleEndian.AppendUint16(h, channels)
	h = binary.LittleEndian.AppendUint32(h, rate)
	h = binary.LittleEndian.AppendUint32(h, rate*uint32(block))
	h = binary.LittleEndian.AppendUint16(h, block)
	h = binary.LittleEndian.AppendUint16(h, bits)
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(len(data)))
	return append(h, data...)
}

func TestLoadFSSource(t *testing.T) {
	c, err := prompts.LoadFS(sourceFS(t))
	if err != nil {
		t.Fatalf("LoadFS(source tree): %v", err)
	}
	embedded := load(t)
	for _, locale := range embedded.Locales() {
		for _, id := range embedded.IDs() {
			a, _ := c.Clip(locale, id)
			b, _ := embedded.Clip(locale, id)
			if a == nil || b == nil || len(a.PCM()) != len(b.PCM()) {
				t.Fatalf("%s %s: source tree and embedded catalog differ", locale, id)
			}
		}
	}
}

func TestLoadFSBroken(t *testing.T) {
	const victim = "assets/es-US/goodbye.wav"
	good := func(t *testing.T) []byte {
		data, err := os.ReadFile(victim)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	tests := []struct {
		name  string
		edit  func(t *testing.T, m fstest.MapFS)
		want  error
		names string // the file the error must name
		says  string // and part of what it must say
	}{
		{"wrong rate", func(t *testing.T, m fstest.MapFS) {
			m[victim].Data = makeWAV(1, 1, 16000, 16, 1600)
		}, prompts.ErrBadAsset, victim, "16000 Hz"},
		{"stereo", func(t *testing.T, m fstest.MapFS) {
			m[victim].Data = makeWAV(1, 2, 8000, 16, 800)
		}, prompts.ErrBadAsset, victim, "2 channel"},
		{"8-bit", func(t *testing.T, m fstest.MapFS) {
			m[victim].Data = makeWAV(1, 1, 8000, 8, 800)
		}, prompts.ErrBadAsset, victim, "8-bit"},
		{"mu-law", func(t *testing.T, m fstest.MapFS) {
			m[victim].Data = makeWAV(7, 1, 8000, 8, 800)
		}, prompts.ErrBadAsset, victim, "format 7"},
		{"float", func(t *testing.T, m fstest.MapFS) {
			m[victim].Data = makeWAV(3, 1, 8000, 32, 800)
		}, prompts.ErrBadAsset, victim, "format 3"},
		{"truncated", func(t *testing.T, m fstest.MapFS) {
			d := good(t)
			m[victim].Data = d[:len(d)/2]
		}, prompts.ErrBadAsset, victim, "truncated"},
		{"cut mid-sample", func(t *testing.T, m fstest.MapFS) {
			d := good(t)
			m[victim].Data = d[:len(d)-1]
		}, prompts.ErrBadAsset, victim, "truncated"},
		{"header only", func(t *testing.T, m fstest.MapFS) {
			m[victim].Data = good(t)[:30]
		}, prompts.ErrBadAsset, victim, ""},
		{"no samples", func(t *testing.T, m fstest.MapFS) {
			m[victim].Data = makeWAV(1, 1, 8000, 16, 0)
		}, media.ErrBadAudio, victim, "empty"},
		{"not WAV", func(t *testing.T, m fstest.MapFS) {
			m[victim].Data = []byte("ID3\x04\x00 this is an mp3, honest")
		}, prompts.ErrBadAsset, victim, "not a WAV file"},
		{"empty file", func(t *testing.T, m fstest.MapFS) {
			m[victim].Data = nil
		}, prompts.ErrBadAsset, victim, "not a WAV file"},
		{"missing asset", func(t *testing.T, m fstest.MapFS) {
			delete(m, victim)
		}, prompts.ErrBadCatalog, victim, "missing asset"},
		{"no assets at all", func(t *testing.T, m fstest.MapFS) {
			for p := range m {
				if strings.HasPrefix(p, "assets/") {
					delete(m, p)
				}
			}
		}, prompts.ErrBadCatalog, "assets/en-US/welcome.wav", "missing asset"},
		{"asset without entry", func(t *testing.T, m fstest.MapFS) {
			m["assets/en-US/ask_mothers_maiden_name.wav"] = &fstest.MapFile{Data: good(t)}
		}, prompts.ErrBadCatalog, "assets/en-US/ask_mothers_maiden_name.wav", "no catalog entry"},
		{"stray file", func(t *testing.T, m fstest.MapFS) {
			m["assets/en-US/welcome.mp3"] = &fstest.MapFile{Data: good(t)}
		}, prompts.ErrBadCatalog, "assets/en-US/welcome.mp3", "no catalog entry"},
		{"asset outside a locale", func(t *testing.T, m fstest.MapFS) {
			m["assets/welcome.wav"] = &fstest.MapFile{Data: good(t)}
		}, prompts.ErrBadCatalog, "assets/welcome.wav", "no catalog entry"},
		{"unknown locale folder", func(t *testing.T, m fstest.MapFS) {
			m["assets/fr-FR/welcome.wav"] = &fstest.MapFile{Data: good(t)}
		}, prompts.ErrBadCatalog, "assets/fr-FR", "locale"},
		{"no catalog", func(t *testing.T, m fstest.MapFS) {
			delete(m, "catalog.yaml")
		}, prompts.ErrBadCatalog, "catalog.yaml", ""},
		{"catalog not YAML", func(t *testing.T, m fstest.MapFS) {
			m["catalog.yaml"].Data = []byte("prompts: [")
		}, prompts.ErrBadCatalog, "catalog.yaml", ""},
		{"catalog unknown field", func(t *testing.T, m fstest.MapFS) {
			m["catalog.yaml"].Data = append(m["catalog.yaml"].Data, "\nvoice: robot\n"...)
		}, prompts.ErrBadCatalog, "catalog.yaml", "voice"},
		{"catalog missing text", func(t *testing.T, m fstest.MapFS) {
			m["catalog.yaml"].Data = []byte(`
locales: [{id: en-US, voice: en-us, speed: 160}, {id: es-US, voice: es-419, speed: 170}]
prompts:
  - id: goodbye
    text: {en-US: Goodbye.}
`)
		}, prompts.ErrBadCatalog, "catalog.yaml", "no text for es-US"},
		{"catalog duplicate id", func(t *testing.T, m fstest.MapFS) {
			m["catalog.yaml"].Data = []byte(`
locales: [{id: en-US, voice: en-us, speed: 160}]
prompts:
  - {id: goodbye, text: {en-US: Goodbye.}}
  - {id: goodbye, text: {en-US: Bye.}}
`)
		}, prompts.ErrBadCatalog, "catalog.yaml", `"goodbye"`},
		{"catalog part in unknown locale", func(t *testing.T, m fstest.MapFS) {
			m["catalog.yaml"].Data = []byte(`
locales: [{id: en-US, voice: en-us, speed: 160}]
prompts:
  - {id: goodbye, text: {en-US: [{en-US: Goodbye.}, {fr-FR: Au revoir.}]}}
`)
		}, prompts.ErrBadCatalog, "catalog.yaml", "fr-FR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := sourceFS(t)
			tt.edit(t, m)
			c, err := prompts.LoadFS(m)
			if err == nil || c != nil {
				t.Fatalf("LoadFS = %v, %v; want an error", c, err)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %q does not wrap %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.names) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q: want it to name %q and say %q", err, tt.names, tt.says)
			}
		})
	}
}

// TestLoadFSSmall loads a hand-made catalog: a bilingual prompt's text joins its parts, and a
// documentation file beside the assets is allowed.
func TestLoadFSSmall(t *testing.T) {
	wav := makeWAV(1, 1, 8000, 16, 1000)
	m := fstest.MapFS{
		"catalog.yaml": {Data: []byte(`
locales: [{id: en-US, voice: en-us, speed: 160}, {id: es-US, voice: es-419, speed: 170}]
prompts:
  - id: menu
    text:
      en-US: [{en-US: "For English, press 1."}, {es-US: "Para español, oprima 2."}]
      es-US: "Para   español,
        oprima 2."
`)},
		"assets/README.md":        {Data: []byte("# notes")},
		"assets/en-US/menu.wav":   {Data: wav},
		"assets/es-US/menu.wav":   {Data: wav},
		"assets/es-US/NOTES.md":   {Data: []byte("notes")},
		"unrelated/elsewhere.txt": {Data: []byte("not looked at")},
	}
	c, err := prompts.LoadFS(m)
	if err != nil {
		t.Fatalf("LoadFS: %v", err)
	}
	if got, want := c.Text(prompts.EnUS, "menu"), "For English, press 1. Para español, oprima 2."; got != want {
		t.Errorf("Text(en-US) = %q, want %q", got, want)
	}
	if got, want := c.Text(prompts.EsUS, "menu"), "Para español, oprima 2."; got != want {
		t.Errorf("Text(es-US) = %q, want %q", got, want)
	}
	clip, err := c.Clip(prompts.EsUS, "menu")
	if err != nil {
		t.Fatalf("Clip: %v", err)
	}
	if clip.Frames() != 7 { // 1000 samples, padded to whole 160-sample frames
		t.Errorf("Clip has %d frames, want 7", clip.Frames())
	}
}
