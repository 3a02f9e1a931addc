package media

import (
	"fmt"
	"sync"
	"time"
)

// Clip is a piece of audio ready to send: 8 kHz PCM16, padded with silence to whole 20 ms
// frames, with its μ-law and A-law encodings computed once. Adapters may cache their own wire
// form of a clip (base64 JSON messages, RTP payloads) with Encoded, so a prompt is encoded once
// per process, not once per call.
type Clip struct {
	id    string
	pcm   []int16
	ulaw  []byte
	alaw  []byte
	cache sync.Map // adapter key -> wire form
}

// NewClip builds a clip from 8 kHz PCM16 samples. It returns an error wrapping ErrBadAudio for
// an empty clip.
func NewClip(id string, pcm []int16) (*Clip, error) {
	if len(pcm) == 0 {
		return nil, fmt.Errorf("%w: clip %q is empty", ErrBadAudio, id)
	}
	n := (len(pcm) + FrameSamples - 1) / FrameSamples * FrameSamples
	c := &Clip{id: id, pcm: make([]int16, n), ulaw: make([]byte, n), alaw: make([]byte, n)}
	copy(c.pcm, pcm)
	EncodeUlaw(c.ulaw, c.pcm)
	EncodeAlaw(c.alaw, c.pcm)
	return c, nil
}

// ID is the clip's name (a prompt id, or a test's label).
func (c *Clip) ID() string { return c.id }

// PCM returns the samples; callers must not modify them.
func (c *Clip) PCM() []int16 { return c.pcm }

// Ulaw returns the clip as μ-law bytes; callers must not modify them.
func (c *Clip) Ulaw() []byte { return c.ulaw }

// Alaw returns the clip as A-law bytes; callers must not modify them.
func (c *Clip) Alaw() []byte { return c.alaw }

// Frames is the number of 20 ms frames in the clip.
func (c *Clip) Frames() int { return len(c.pcm) / FrameSamples }

// Duration is the clip's playing time.
func (c *Clip) Duration() time.Duration { return time.Duration(c.Frames()) * FrameDuration }

// Encoded returns the adapter's cached wire form of the clip under key, building it with build
// on first use. Concurrent first uses may build twice; one result wins and is kept.
func (c *Clip) Encoded(key any, build func(*Clip) any) any {
	if v, ok := c.cache.Load(key); ok {
		return v
	}
	v, _ := c.cache.LoadOrStore(key, build(c))
	return v
}
