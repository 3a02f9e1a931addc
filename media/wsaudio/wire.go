package wsaudio

import (
	"encoding/binary"
	"time"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/resample"
)

// Rates the adapters accept on the wire.
const (
	Rate8k  = 8000
	Rate16k = 16000
)

// FrameBytes is the size of one 20 ms frame of L16 mono at rate.
func FrameBytes(rate int) int { return rate / 50 * 2 }

// ValidRate reports whether rate is one the adapters stream at (8000 or 16000 Hz).
func ValidRate(rate int) bool { return rate == Rate8k || rate == Rate16k }

// Msg is one WebSocket message of a prompt's wire form.
type Msg struct {
	// Text is true for a text message (JSON), false for binary audio.
	Text bool
	// Data is the message; it is shared between calls and must not be modified.
	Data []byte
	// Dur is how long the audio in the message plays.
	Dur time.Duration
}

// Wire is a prompt ready to send: its messages in order. Adapters build it once per clip and
// playback rate and cache it in the clip (media.Clip.Encoded).
type Wire struct {
	Msgs []Msg
}

// AppendL16 appends pcm to dst as 16-bit little-endian samples.
func AppendL16(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(s))
	}
	return dst
}

// DecodeL16 appends the little-endian samples in b (of even length) to dst.
func DecodeL16(dst []int16, b []byte) []int16 {
	for i := 0; i+1 < len(b); i += 2 {
		dst = append(dst, int16(binary.LittleEndian.Uint16(b[i:])))
	}
	return dst
}

type l16Key struct{ rate int }

// L16 returns clip as L16 at rate: its own samples at 8 kHz, resample.UpClip of them at 16 kHz.
// The result is cached in the clip and must not be modified.
func L16(clip *media.Clip, rate int) []byte {
	return clip.Encoded(l16Key{rate}, func(c *media.Clip) any {
		pcm := c.PCM()
		if rate == Rate16k {
			pcm = resample.UpClip(pcm)
		}
		return AppendL16(make([]byte, 0, 2*len(pcm)), pcm)
	}).([]byte)
}

type binaryKey struct{ rate, frames int }

// BinaryWire returns clip as binary L16 messages at rate of frames 20 ms frames each (the last
// may be shorter), cached in the clip.
func BinaryWire(clip *media.Clip, rate, frames int) *Wire {
	return clip.Encoded(binaryKey{rate, frames}, func(c *media.Clip) any {
		b := L16(c, rate)
		step := frames * FrameBytes(rate)
		w := &Wire{Msgs: make([]Msg, 0, (len(b)+step-1)/step)}
		for off := 0; off < len(b); off += step {
			part := b[off:min(off+step, len(b))]
			w.Msgs = append(w.Msgs, Msg{Data: part, Dur: time.Duration(len(part)/FrameBytes(rate)) * media.FrameDuration})
		}
		return w
	}).(*Wire)
}
