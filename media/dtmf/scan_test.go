package dtmf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callproof/callproof/media"
)

// wavFile builds a RIFF WAVE file: tag 1 (PCM16), 6 (A-law) or 7 (μ-law), with an extra chunk
// before the data and one after it.
func wavFile(tag uint16, rate, channels int, data []byte) []byte {
	var b bytes.Buffer
	bits := uint16(16)
	if tag != wavPCM {
		bits = 8
	}
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(4 + 8 + 16 + 8 + 4 + 8 + len(data) + 8 + 4))
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le(tag)
	le(uint16(channels))
	le(uint32(rate))
	le(uint32(rate * channels * int(bits) / 8))
	le(uint16(channels * int(bits) / 8))
	le(bits)
	b.WriteString("fact")
	le(uint32(4))
	le(uint32(len(data)))
	b.WriteString("data")
	le(uint32(len(data)))
	b.Write(data)
	b.WriteString("LIST") // trailing metadata must not be read as audio
	le(uint32(4))
	b.WriteString("INFO")
	return b.Bytes()
}

func pcmBytes(pcm []int16) []byte {
	out := make([]byte, 2*len(pcm))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(out[2*i:], uint16(s))
	}
	return out
}

func TestScanFile(t *testing.T) {
	const digits = "0123456789*#ABCD"
	opts := GenOptions{On: 60 * time.Millisecond, Off: 60 * time.Millisecond, Lead: 50 * time.Millisecond}
	pcm8 := Tones(digits, opts)
	opts.SampleRate = 16000
	pcm16 := Tones(digits, opts)
	stereo := make([]int16, 0, 2*len(pcm8))
	for _, s := range pcm8 {
		stereo = append(stereo, s, 0) // digits on the left channel only
	}
	ul := media.EncodeUlaw(make([]byte, len(pcm8)), pcm8)
	al := media.EncodeAlaw(make([]byte, len(pcm8)), pcm8)
	dir := t.TempDir()
	files := []struct {
		name, format string
		data         []byte
	}{
		{"pcm8.wav", "", wavFile(wavPCM, 8000, 1, pcmBytes(pcm8))},
		{"pcm16.wav", "", wavFile(wavPCM, 16000, 1, pcmBytes(pcm16))},
		{"ulaw.wav", "", wavFile(wavUlaw, 8000, 1, ul)},
		{"alaw.wav", "", wavFile(wavAlaw, 8000, 1, al)},
		{"stereo.wav", "", wavFile(wavPCM, 8000, 2, pcmBytes(stereo))},
		{"forced.wav", FormatWAV, wavFile(wavPCM, 8000, 1, pcmBytes(pcm8))},
		{"raw.ul", "", ul},
		{"raw.al", "", al},
		{"raw.sln", "", pcmBytes(pcm8)},
		{"raw.sln16", "", pcmBytes(pcm16)},
		{"noext", FormatUlaw, ul},
		{"noext2", FormatAlaw, al},
		{"noext3", FormatPCM16, pcmBytes(pcm8)},
		{"noext4", FormatPCM16x16, pcmBytes(pcm16)},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			path := filepath.Join(dir, f.name)
			if err := os.WriteFile(path, f.data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ScanFile(path, f.format)
			if err != nil {
				t.Fatal(err)
			}
			if digitsOf(got) != digits {
				t.Fatalf("digits %q", digitsOf(got))
			}
			if d := got[0].Start - 50*time.Millisecond; d < -3*time.Millisecond || d > 3*time.Millisecond {
				t.Errorf("first digit at %v, want 50 ms", got[0].Start)
			}
		})
	}
}

func TestScanErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	float := wavFile(wavPCM, 8000, 1, nil)
	binary.LittleEndian.PutUint16(float[20:], 3) // IEEE float
	tests := []struct {
		name, path, format string
	}{
		{"unknown extension", write("x.mp3", []byte("ID3....")), ""},
		{"44.1 kHz", write("a.wav", wavFile(wavPCM, 44100, 1, make([]byte, 100))), ""},
		{"float WAV", write("f.wav", float), ""},
		{"truncated header", write("t.wav", []byte("RIFF\x00\x00")), ""},
		{"RIFF not WAVE", write("r.wav", []byte("RIFF\x04\x00\x00\x00AVI ")), ""},
		{"no data chunk", write("n.wav", wavFile(wavPCM, 8000, 1, nil)[:36]), ""},
		{"bad format name", write("b.raw", nil), "mp3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ScanFile(tt.path, tt.format); !errors.Is(err, ErrFormat) {
				t.Fatalf("err = %v, want ErrFormat", err)
			}
		})
	}
	if _, err := ScanFile(filepath.Join(dir, "missing.wav"), ""); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := Scan(strings.NewReader(""), FormatUlaw, 16000); !errors.Is(err, ErrFormat) {
		t.Fatalf("μ-law at 16 kHz: %v", err)
	}
	raw := pcmBytes(Tones("7", GenOptions{}))
	got, err := Scan(bytes.NewReader(raw[:len(raw)-1]), FormatPCM16, 0) // a torn last sample
	if err != nil || digitsOf(got) != "7" {
		t.Fatalf("odd length: %v %v", got, err)
	}
}

func TestReadWAV(t *testing.T) {
	pcm := Tones("5", GenOptions{SampleRate: 16000})
	got, rate, err := ReadWAV(bytes.NewReader(wavFile(wavPCM, 16000, 1, pcmBytes(pcm))))
	if err != nil || rate != 16000 || len(got) != len(pcm) || got[100] != pcm[100] {
		t.Fatalf("ReadWAV: %d samples at %d Hz, %v", len(got), rate, err)
	}
}
