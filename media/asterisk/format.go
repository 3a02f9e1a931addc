package asterisk

import (
	"encoding/binary"

	"github.com/callproof/callproof/media"
)

// codec is a media format chan_websocket may put on the socket, by the name MEDIA_START
// reports (ast_format_get_name: "ulaw", "alaw", "slin", "slin16", ...).
type codec struct {
	name        string
	rate        int // samples per second on the wire
	sampleBytes int // bytes per sample
}

// codecs are the formats a leg accepts. Everything else (g722, opus, slin24, ...) is refused
// with 1003 and a reason naming these.
var codecs = map[string]codec{
	"ulaw":   {"ulaw", 8000, 1},
	"alaw":   {"alaw", 8000, 1},
	"slin":   {"slin", 8000, 2},
	"slin16": {"slin16", 16000, 2},
}

// supportedFormats is the list quoted when refusing a format.
const supportedFormats = "c(ulaw), c(alaw), c(slin) or c(slin16)"

// frameBytes is the size of 20 ms on the wire.
func (c codec) frameBytes() int { return c.rate / 50 * c.sampleBytes }

// bytesFor is the size of d on the wire.
func (c codec) secondBytes() int { return c.rate * c.sampleBytes }

// maxInboundFrames bounds one inbound binary message: 10 frames (200 ms). Asterisk sends its
// internal frame size, 20 ms normally (30 or 60 ms from some trunks).
const maxInboundFrames = 10

// chunkFrames is the most audio sent in one binary message: one second, 50 whole 20 ms
// frames (at most 32 000 bytes, for slin16), well under chan_websocket's 65 500-byte limit
// (telephony-protocols §6.2, pitfall 16) and short enough that flow control and FLUSH_MEDIA act
// promptly.
const chunkFrames = 50

// maxMessage is the hard limit Asterisk puts on a WebSocket message; larger ones make it close
// the socket and hang up the call.
const maxMessage = 65500

// decode converts one inbound binary message to 8 kHz PCM in dst, which must hold
// len(p)/sampleBytes samples. slin16 goes through the leg's decimator.
func (c codec) decode(dst []int16, tmp []int16, dec *decimator, p []byte) []int16 {
	switch c.name {
	case "ulaw":
		return media.DecodeUlaw(dst, p)
	case "alaw":
		return media.DecodeAlaw(dst, p)
	case "slin":
		dst = dst[:len(p)/2]
		for i := range dst {
			dst[i] = int16(binary.LittleEndian.Uint16(p[2*i:]))
		}
		return dst
	}
	tmp = tmp[:len(p)/2]
	for i := range tmp {
		tmp[i] = int16(binary.LittleEndian.Uint16(p[2*i:]))
	}
	return dec.process(dst, tmp)
}

// wireKey is the key of a clip's wire form in media.Clip's cache, per format.
type wireKey struct{ format string }

// wireClip is a clip in one format, cut into binary messages of at most one second of whole
// 20 ms frames.
type wireClip struct {
	chunks [][]byte
}

func wireFor(clip *media.Clip, c codec) *wireClip {
	return clip.Encoded(wireKey{c.name}, func(clip *media.Clip) any { return buildWire(clip, c) }).(*wireClip)
}

func buildWire(clip *media.Clip, c codec) *wireClip {
	var b []byte
	switch c.name {
	case "ulaw":
		b = clip.Ulaw()
	case "alaw":
		b = clip.Alaw()
	case "slin":
		b = appendLE(nil, clip.PCM())
	case "slin16":
		b = appendLE(nil, upsample(clip.PCM()))
	}
	size := chunkFrames * c.frameBytes()
	w := &wireClip{chunks: make([][]byte, 0, (len(b)+size-1)/size)}
	for off := 0; off < len(b); off += size {
		w.chunks = append(w.chunks, b[off:min(off+size, len(b))])
	}
	return w
}

func appendLE(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(s))
	}
	return dst
}

// encode converts 8 kHz PCM to the codec's wire form (for the simulated Asterisk).
func (c codec) encode(pcm []int16) []byte {
	switch c.name {
	case "ulaw":
		return media.EncodeUlaw(make([]byte, len(pcm)), pcm)
	case "alaw":
		return media.EncodeAlaw(make([]byte, len(pcm)), pcm)
	case "slin":
		return appendLE(nil, pcm)
	}
	return appendLE(nil, upsample(pcm))
}
