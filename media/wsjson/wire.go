package wsjson

import (
	"encoding/base64"
	"encoding/binary"

	"github.com/callproof/callproof/media"
)

// Codec is the audio encoding of a stream's media payloads.
type Codec uint8

// Codecs the adapters speak: G.711 (ITU-T G.711) and 16-bit linear PCM in network byte order,
// as RTP carries it (RFC 3551 §4.5.11), all at 8 kHz.
const (
	Ulaw Codec = iota + 1 // PCMU, audio/x-mulaw
	Alaw                  // PCMA
	L16                   // big-endian 16-bit PCM
)

func (c Codec) String() string {
	switch c {
	case Ulaw:
		return "PCMU"
	case Alaw:
		return "PCMA"
	case L16:
		return "L16"
	}
	return "unknown"
}

// SampleBytes is the size of one sample: 1 for G.711, 2 for L16.
func (c Codec) SampleBytes() int {
	if c == L16 {
		return 2
	}
	return 1
}

// Decode decodes src into dst, which must have room for len(src)/SampleBytes samples, and
// returns the samples. A trailing odd byte of L16 is ignored.
func (c Codec) Decode(dst []int16, src []byte) []int16 {
	switch c {
	case Alaw:
		return media.DecodeAlaw(dst, src)
	case L16:
		n := len(src) / 2
		dst = dst[:n]
		for i := range dst {
			dst[i] = int16(binary.BigEndian.Uint16(src[2*i:]))
		}
		return dst
	}
	return media.DecodeUlaw(dst, src)
}

// Append appends pcm encoded with c to dst.
func (c Codec) Append(dst []byte, pcm []int16) []byte {
	switch c {
	case Alaw:
		for _, s := range pcm {
			dst = append(dst, media.PCMToAlaw(s))
		}
	case L16:
		for _, s := range pcm {
			dst = binary.BigEndian.AppendUint16(dst, uint16(s))
		}
	default:
		for _, s := range pcm {
			dst = append(dst, media.PCMToUlaw(s))
		}
	}
	return dst
}

// clipBytes returns clip encoded with c, from the clip's own encodings where it has them.
func (c Codec) clipBytes(clip *media.Clip) []byte {
	switch c {
	case Ulaw:
		return clip.Ulaw()
	case Alaw:
		return clip.Alaw()
	}
	return c.Append(make([]byte, 0, len(clip.PCM())*c.SampleBytes()), clip.PCM())
}

// ChunkSamples is the most audio sent in one media message: one second, 50 whole 20 ms
// frames (10 668 bytes of base64 for G.711). Twilio documents no limit and Telnyx takes 20 ms
// to 30 s per message in RTP mode; a second keeps clear latency and memory bounded
// (telephony-protocols §8, pitfall 16) and frames whole (pitfall 5).
const ChunkSamples = media.SampleRate

// Chunks is a clip ready to send: for each media message, the JSON text after the message's
// prefix, `,"media":{"payload":"<base64>"}}`. Prefixes differ per call (Twilio's carries the
// streamSid), so the writer sends the prefix and then one of these; base64 is computed once
// per process and codec.
type Chunks [][]byte

const (
	chunkHead = `,"media":{"payload":"`
	chunkTail = `"}}`
)

// chunksKey is the key of a codec's chunks in media.Clip's cache.
type chunksKey struct{ codec Codec }

// Keys and builders per codec, made once so that a cached lookup allocates nothing.
var (
	chunkKeys     = [...]any{Ulaw: chunksKey{Ulaw}, Alaw: chunksKey{Alaw}, L16: chunksKey{L16}}
	chunkBuilders = [...]func(*media.Clip) any{
		Ulaw: func(c *media.Clip) any { return BuildChunks(c, Ulaw) },
		Alaw: func(c *media.Clip) any { return BuildChunks(c, Alaw) },
		L16:  func(c *media.Clip) any { return BuildChunks(c, L16) },
	}
)

// ChunksFor returns clip's cached chunks for codec (Ulaw, Alaw or L16), building them on
// first use.
func ChunksFor(clip *media.Clip, codec Codec) Chunks {
	return clip.Encoded(chunkKeys[codec], chunkBuilders[codec]).(Chunks)
}

// BuildChunks encodes clip for codec and cuts it into media-message bodies of at most
// ChunkSamples samples each. NewClip pads clips to whole frames, so every chunk is whole
// frames.
func BuildChunks(clip *media.Clip, codec Codec) Chunks {
	b := codec.clipBytes(clip)
	step := ChunkSamples * codec.SampleBytes()
	out := make(Chunks, 0, (len(b)+step-1)/step)
	for off := 0; off < len(b); off += step {
		part := b[off:min(off+step, len(b))]
		c := make([]byte, 0, len(chunkHead)+base64.StdEncoding.EncodedLen(len(part))+len(chunkTail))
		c = append(c, chunkHead...)
		c = base64.StdEncoding.AppendEncode(c, part)
		c = append(c, chunkTail...)
		out = append(out, c)
	}
	return out
}
