package twilio

import (
	"encoding/base64"

	"github.com/callproof/callproof/media"
)

// maxChunk is the most μ-law sent in one media message: one second, 50 whole 20 ms frames
// (10 668 bytes of base64). Twilio does not document a limit; a second keeps clear latency
// and memory bounded (telephony-protocols §8, pitfall 16) and frames whole (pitfall 5).
const maxChunk = media.SampleRate

// wireKey is the key of the adapter's wire form in media.Clip's cache.
type wireKey struct{}

// wireClip is a clip ready for Twilio: for each media message, the JSON text after the
// streamSid, `,"media":{"payload":"<base64>"}}`. The streamSid differs per call, so the writer
// sends the leg's prefix and one of these; base64 is computed once per process.
type wireClip struct {
	chunks [][]byte
}

const (
	chunkHead = `,"media":{"payload":"`
	chunkTail = `"}}`
)

// wireFor returns clip's cached wire form, building it on first use.
func wireFor(c *media.Clip) *wireClip {
	return c.Encoded(wireKey{}, buildWire).(*wireClip)
}

func buildWire(c *media.Clip) any {
	u := c.Ulaw() // whole 20 ms frames: NewClip pads
	w := &wireClip{chunks: make([][]byte, 0, (len(u)+maxChunk-1)/maxChunk)}
	for off := 0; off < len(u); off += maxChunk {
		part := u[off:min(off+maxChunk, len(u))]
		b := make([]byte, 0, len(chunkHead)+base64.StdEncoding.EncodedLen(len(part))+len(chunkTail))
		b = append(b, chunkHead...)
		b = base64.StdEncoding.AppendEncode(b, part)
		b = append(b, chunkTail...)
		w.chunks = append(w.chunks, b)
	}
	return w
}
