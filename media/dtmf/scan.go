package dtmf

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/callproof/callproof/media"
)

// Raw formats accepted by Scan and ScanFile.
const (
	FormatWAV      = "wav"       // RIFF WAVE: PCM16, μ-law or A-law, 8 or 16 kHz, any channel count
	FormatPCM16    = "pcm16"     // raw signed 16-bit little-endian, 8 kHz unless told otherwise
	FormatPCM16x16 = "pcm16-16k" // raw signed 16-bit little-endian at 16 kHz
	FormatUlaw     = "ulaw"      // raw G.711 μ-law, 8 kHz
	FormatAlaw     = "alaw"      // raw G.711 A-law, 8 kHz
)

// WAV format tags (RIFF WAVE fmt chunk).
const (
	wavPCM        = 1
	wavAlaw       = 6
	wavUlaw       = 7
	wavExtensible = 0xFFFE
)

// Scan runs a default detector over the audio read from r and returns every key press in it.
// format is FormatWAV (the rate comes from the header; rate is ignored), FormatPCM16,
// FormatPCM16x16, FormatUlaw or FormatAlaw; rate is the raw audio's sample rate (0 means 8000,
// or 16000 for FormatPCM16x16). Errors wrap ErrFormat when the audio cannot be read as asked.
func Scan(r io.Reader, format string, rate int) ([]Detection, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var src io.Reader = br
	var enc string
	channels := 1
	switch format {
	case FormatWAV:
		h, err := readWAVHeader(br)
		if err != nil {
			return nil, err
		}
		enc, rate, channels = h.encoding, h.rate, h.channels
		if h.size >= 0 {
			src = io.LimitReader(br, h.size)
		}
	case FormatPCM16, FormatUlaw, FormatAlaw:
		enc = format
		if rate == 0 {
			rate = 8000
		}
	case FormatPCM16x16:
		enc = FormatPCM16
		if rate == 0 {
			rate = 16000
		}
	default:
		return nil, fmt.Errorf("%w: format %q: want wav, pcm16, pcm16-16k, ulaw or alaw", ErrFormat, format)
	}
	if rate != 8000 && rate != 16000 {
		return nil, fmt.Errorf("%w: sample rate %d Hz: want 8000 or 16000", ErrFormat, rate)
	}
	if (enc == FormatUlaw || enc == FormatAlaw) && rate != 8000 {
		return nil, fmt.Errorf("%w: G.711 at %d Hz", ErrFormat, rate)
	}
	d := New(Config{SampleRate: rate})
	width := 2
	if enc != FormatPCM16 {
		width = 1
	}
	frame := width * channels
	raw := make([]byte, 4096*frame)
	pcm := make([]int16, 4096)
	var out []Detection
	carry := 0
	for {
		n, err := io.ReadFull(src, raw[carry:])
		n += carry
		whole := n / frame * frame
		pcm = decodeFrames(pcm[:0], raw[:whole], enc, channels)
		out = d.ProcessEvents(out, pcm)
		carry = copy(raw, raw[whole:n])
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return out, fmt.Errorf("dtmf: reading audio: %w", err)
		}
	}
	return d.Flush(out), nil
}

// decodeFrames appends the samples of raw (whole frames) to dst, averaging channels.
func decodeFrames(dst []int16, raw []byte, enc string, channels int) []int16 {
	if channels == 1 {
		switch enc {
		case FormatUlaw:
			for _, b := range raw {
				dst = append(dst, media.UlawToPCM(b))
			}
		case FormatAlaw:
			for _, b := range raw {
				dst = append(dst, media.AlawToPCM(b))
			}
		default:
			for i := 0; i+1 < len(raw); i += 2 {
				dst = append(dst, int16(binary.LittleEndian.Uint16(raw[i:])))
			}
		}
		return dst
	}
	sample := func(i int) int {
		switch enc {
		case FormatUlaw:
			return int(media.UlawToPCM(raw[i]))
		case FormatAlaw:
			return int(media.AlawToPCM(raw[i]))
		}
		return int(int16(binary.LittleEndian.Uint16(raw[2*i:])))
	}
	count := len(raw)
	if enc == FormatPCM16 {
		count /= 2
	}
	for i := 0; i+channels <= count; i += channels {
		s := 0
		for c := 0; c < channels; c++ {
			s += sample(i + c)
		}
		dst = append(dst, int16(s/channels))
	}
	return dst
}

type wavHeader struct {
	encoding string
	rate     int
	channels int
	size     int64 // data chunk size; -1 when unknown (streamed WAV)
}

// readWAVHeader reads a RIFF WAVE header up to the start of the data chunk.
func readWAVHeader(r io.Reader) (wavHeader, error) {
	var h wavHeader
	var riff [12]byte
	if _, err := io.ReadFull(r, riff[:]); err != nil {
		return h, fmt.Errorf("%w: WAV header: %v", ErrFormat, err)
	}
	if string(riff[0:4]) != "RIFF" || string(riff[8:12]) != "WAVE" {
		return h, fmt.Errorf("%w: not a RIFF WAVE file", ErrFormat)
	}
	gotFmt := false
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return h, fmt.Errorf("%w: WAV file has no data chunk", ErrFormat)
		}
		id, size := string(ch[0:4]), binary.LittleEndian.Uint32(ch[4:8])
		switch id {
		case "fmt ":
			if size < 16 || size > 1<<10 {
				return h, fmt.Errorf("%w: WAV fmt chunk of %d bytes", ErrFormat, size)
			}
			b := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, b); err != nil {
				return h, fmt.Errorf("%w: WAV fmt chunk: %v", ErrFormat, err)
			}
			tag := binary.LittleEndian.Uint16(b[0:])
			h.channels = int(binary.LittleEndian.Uint16(b[2:]))
			h.rate = int(binary.LittleEndian.Uint32(b[4:]))
			bits := binary.LittleEndian.Uint16(b[14:])
			if tag == wavExtensible && size >= 26 {
				tag = binary.LittleEndian.Uint16(b[24:]) // first two bytes of the sub-format GUID
			}
			switch {
			case tag == wavPCM && bits == 16:
				h.encoding = FormatPCM16
			case tag == wavUlaw && bits == 8:
				h.encoding = FormatUlaw
			case tag == wavAlaw && bits == 8:
				h.encoding = FormatAlaw
			default:
				return h, fmt.Errorf("%w: WAV format %d with %d-bit samples: want 16-bit PCM, μ-law or A-law", ErrFormat, tag, bits)
			}
			if h.channels < 1 || h.channels > 8 {
				return h, fmt.Errorf("%w: WAV with %d channels", ErrFormat, h.channels)
			}
			gotFmt = true
		case "data":
			if !gotFmt {
				return h, fmt.Errorf("%w: WAV data before fmt", ErrFormat)
			}
			h.size = int64(size)
			if size == 0 || size == 0xFFFFFFFF {
				h.size = -1
			}
			return h, nil
		default:
			if _, err := io.CopyN(io.Discard, r, int64(size)+int64(size%2)); err != nil {
				return h, fmt.Errorf("%w: WAV chunk %q: %v", ErrFormat, id, err)
			}
		}
	}
}

// ScanFile runs Scan over a file. format "" means: a WAV file if it starts with a RIFF header,
// else raw audio named by its extension (.ul .ulaw .pcmu: μ-law; .al .alaw .pcma: A-law;
// .sln .raw .s16: PCM16 at 8 kHz; .sln16: PCM16 at 16 kHz). Otherwise format is one of
// FormatPCM16, FormatPCM16x16, FormatUlaw, FormatAlaw or FormatWAV.
func ScanFile(path, format string) ([]Detection, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if format == "" {
		var head [4]byte
		n, _ := io.ReadFull(f, head[:])
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		if bytes.Equal(head[:n], []byte("RIFF")) {
			format = FormatWAV
		} else {
			switch strings.ToLower(filepath.Ext(path)) {
			case ".ul", ".ulaw", ".pcmu", ".u8":
				format = FormatUlaw
			case ".al", ".alaw", ".pcma", ".a8":
				format = FormatAlaw
			case ".sln", ".raw", ".s16", ".pcm":
				format = FormatPCM16
			case ".sln16":
				format = FormatPCM16x16
			default:
				return nil, fmt.Errorf("%w: %s: not a WAV file and no known raw extension; give the format", ErrFormat, filepath.Base(path))
			}
		}
	}
	return Scan(f, format, 0)
}

// ReadWAV reads a whole WAV file (PCM16, μ-law or A-law, channels averaged) and returns its
// samples and sample rate. It is meant for tests and tools, not for the media path.
func ReadWAV(r io.Reader) ([]int16, int, error) {
	br := bufio.NewReader(r)
	h, err := readWAVHeader(br)
	if err != nil {
		return nil, 0, err
	}
	var src io.Reader = br
	if h.size >= 0 {
		src = io.LimitReader(br, h.size)
	}
	raw, err := io.ReadAll(src)
	if err != nil {
		return nil, 0, fmt.Errorf("dtmf: reading WAV data: %w", err)
	}
	width := 2
	if h.encoding != FormatPCM16 {
		width = 1
	}
	frame := width * h.channels
	raw = raw[:len(raw)/frame*frame]
	return decodeFrames(make([]int16, 0, len(raw)/frame), raw, h.encoding, h.channels), h.rate, nil
}
