package telnyx

import (
	"sync/atomic"

	"github.com/callproof/callproof/media/wsjson"
)

// Telnyx does not guarantee the order of media frames ("Media frame order is not guaranteed.
// Use media.chunk, media.timestamp, and sequence_number to order frames"; telephony-protocols
// §2, §8 pitfall 9). The leg puts them back in chunk order with a small jitter buffer before
// the receiver, whose in-band DTMF detector needs audio in order.
const (
	// jitterSlots is the buffer's window in frames: a frame may arrive up to jitterSlots-1
	// places late and still be played in order, and a missing frame is given up once a frame
	// jitterSlots chunks past it arrives (100 ms of 20 ms frames).
	jitterSlots = 5
	// jitterPrime is how many frames the buffer holds at the start of the stream before
	// releasing any, so that frames swapped in the first packets are still ordered whatever
	// number the chunk counter starts at.
	jitterPrime = 3
)

// audioSink receives frames in order; *media.Receiver implements it.
type audioSink interface {
	Audio(pcm []int16)
}

// jitter re-sequences inbound frames by chunk number. Its methods run on the leg's reader
// goroutine; the counters may be read from any goroutine. It allocates only while a slot
// grows to the largest frame seen.
type jitter struct {
	sink  audioSink
	slots [jitterSlots]jitterSlot
	next  uint64 // chunk released next
	top   uint64 // highest chunk seen
	held  int    // frames in the slots
	begun bool   // a frame has been seen (next and top are set)
	live  bool   // primed: frames are released as they complete the sequence
	hole  bool   // the last chunk passed over was missing

	gaps      *atomic.Uint64 // runs of missing chunks given up on
	reordered atomic.Uint64  // frames that arrived after a higher chunk
	late      atomic.Uint64  // frames dropped: their place was already played, or a duplicate
}

type jitterSlot struct {
	chunk uint64
	full  bool
	pcm   []int16
}

// push takes the frame numbered chunk, encoded with codec, and releases every frame that is
// now in sequence.
func (j *jitter) push(chunk uint64, codec wsjson.Codec, payload []byte) {
	switch {
	case !j.begun:
		j.next, j.top, j.begun = chunk, chunk, true
	case !j.live && chunk < j.next && j.top-chunk < jitterSlots:
		j.next = chunk // an earlier frame while priming: the sequence starts lower
	}
	if chunk < j.next {
		j.late.Add(1)
		return
	}
	if chunk < j.top {
		j.reordered.Add(1)
	} else {
		j.top = chunk
	}
	if chunk >= j.next+jitterSlots {
		j.skipTo(chunk - jitterSlots + 1)
	}
	s := &j.slots[chunk%jitterSlots]
	if s.full { // every held frame is in [next, next+jitterSlots): this is the same chunk
		j.late.Add(1)
		return
	}
	n := len(payload) / codec.SampleBytes()
	if cap(s.pcm) < n {
		s.pcm = make([]int16, n)
	}
	s.pcm = codec.Decode(s.pcm[:n], payload)
	s.chunk, s.full = chunk, true
	j.held++
	if !j.live && j.held >= jitterPrime {
		j.live = true
	}
	if j.live {
		j.drain()
	}
}

// drain releases frames from next on while they are present.
func (j *jitter) drain() {
	for {
		s := &j.slots[j.next%jitterSlots]
		if !s.full || s.chunk != j.next {
			return
		}
		j.release(s)
		j.next++
	}
}

// skipTo moves next up to chunk, releasing the frames held before it in order and counting
// the runs of missing ones.
func (j *jitter) skipTo(chunk uint64) {
	j.live = true // priming is over: what was held goes out now
	for j.next < chunk {
		if j.held == 0 {
			// Nothing held: jump the rest of the way at once (a long silence or a big jump).
			if !j.hole {
				j.gaps.Add(1)
				j.hole = true
			}
			j.next = chunk
			return
		}
		if s := &j.slots[j.next%jitterSlots]; s.full && s.chunk == j.next {
			j.release(s)
		} else if !j.hole {
			j.gaps.Add(1)
			j.hole = true
		}
		j.next++
	}
}

// flush releases everything held, in order (the stream is stopping).
func (j *jitter) flush() {
	if j.held > 0 {
		j.skipTo(j.top + 1)
	}
}

func (j *jitter) release(s *jitterSlot) {
	s.full = false
	j.held--
	j.hole = false
	j.sink.Audio(s.pcm)
}
