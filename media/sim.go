package media

import (
	"encoding/binary"
	"hash/maphash"
)

// SimKind tells what a simulated platform client observed.
type SimKind uint8

// Simulated platform client observations.
const (
	// SimAudio is audio the server sent, as 8 kHz PCM.
	SimAudio SimKind = iota + 1
	// SimMark is a mark (or the platform's equivalent) the server sent after a prompt.
	SimMark
	// SimClear is the server discarding queued audio (barge-in).
	SimClear
	// SimClosed is the server ending the stream; Code and Reason say how.
	SimClosed
	// SimPlayed is the simulated platform acknowledging mark Mark after playing the audio
	// before it (at once, or in real time), as the platform itself would.
	SimPlayed
)

// SimEvent is what a simulated platform client (the platform's side of a leg, used by
// `callproof call`, `callproof load` and integration tests) observed from the server.
type SimEvent struct {
	Kind   SimKind
	Audio  []int16 // SimAudio: 8 kHz PCM, whole 20 ms frames
	Mark   string  // SimMark
	Code   int     // SimClosed: WebSocket close code or 0
	Reason string  // SimClosed
}

// PromptIndex recognises which clip starts in audio received from the server, for simulated
// platforms whose protocol has no marks carrying the prompt id. Clips are recognised by their
// first two 20 ms frames, which the server sends unchanged on lossless 8 kHz paths.
type PromptIndex struct {
	seed  maphash.Seed
	byKey map[uint64]*Clip
}

// NewPromptIndex indexes clips by their opening frames.
func NewPromptIndex(clips []*Clip) *PromptIndex {
	p := &PromptIndex{seed: maphash.MakeSeed(), byKey: make(map[uint64]*Clip, len(clips))}
	for _, c := range clips {
		n := min(2*FrameSamples, len(c.pcm))
		p.byKey[p.key(c.pcm[:n])] = c
	}
	return p
}

// Match returns the clip whose first two frames are pcm (320 samples), if any.
func (p *PromptIndex) Match(pcm []int16) (*Clip, bool) {
	c, ok := p.byKey[p.key(pcm)]
	return c, ok
}

func (p *PromptIndex) key(pcm []int16) uint64 {
	var h maphash.Hash
	h.SetSeed(p.seed)
	var b [2]byte
	for _, s := range pcm {
		binary.LittleEndian.PutUint16(b[:], uint16(s))
		h.Write(b[:])
	}
	return h.Sum64()
}
