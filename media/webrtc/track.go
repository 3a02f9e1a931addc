package webrtc

import (
	"strings"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Codec names as they appear in negotiated parameters (compared case-insensitively).
const (
	mimeTelephoneEvent = "audio/telephone-event"
	clockRate          = 8000
)

// codecKind is what a payload type carries.
type codecKind uint8

const (
	kindUnknown codecKind = iota
	kindPCMU
	kindPCMA
	kindEvent // RFC 4733 telephone-event
)

// kindOf classifies a negotiated codec.
func kindOf(c webrtc.RTPCodecCapability) codecKind {
	if c.ClockRate != clockRate {
		return kindUnknown
	}
	switch {
	case strings.EqualFold(c.MimeType, webrtc.MimeTypePCMU):
		return kindPCMU
	case strings.EqualFold(c.MimeType, webrtc.MimeTypePCMA):
		return kindPCMA
	case strings.EqualFold(c.MimeType, mimeTelephoneEvent):
		return kindEvent
	}
	return kindUnknown
}

// ptKinds maps RTP payload types (0-127) to what they carry; a value, so a read loop holds its
// own copy and classifies each packet with one index.
type ptKinds [128]codecKind

func kindsOf(codecs []webrtc.RTPCodecParameters) ptKinds {
	var k ptKinds
	for _, c := range codecs {
		if c.PayloadType < 128 {
			k[c.PayloadType] = kindOf(c.RTPCodecCapability)
		}
	}
	return k
}

// binding is what a track learnt when pion bound it to a sender: where to write, with which
// SSRC, and the negotiated payload types.
type binding struct {
	w     webrtc.TrackLocalWriter
	ssrc  uint32
	audio codecKind // kindPCMU or kindPCMA
	pt    uint8     // the audio payload type
	evPT  uint8     // the telephone-event payload type, when hasEv
	hasEv bool
}

// g711Track is a webrtc.TrackLocal that writes RTP itself, so one SSRC can carry G.711 audio
// and RFC 4733 telephone-events on their negotiated payload types (pion's static tracks
// rewrite every packet to the bound codec's payload type). The audio codec is the first PCMU or
// PCMA entry of the negotiated list, which follows the offer's preference. Headers and
// pacing are the writer's business; the track only holds the binding.
type g711Track struct {
	id, stream string

	mu sync.Mutex
	b  binding
	ok bool
}

var _ webrtc.TrackLocal = (*g711Track)(nil)

func newG711Track(id, stream string) *g711Track { return &g711Track{id: id, stream: stream} }

// Bind implements webrtc.TrackLocal.
func (t *g711Track) Bind(c webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var (
		b     = binding{w: c.WriteStream(), ssrc: uint32(c.SSRC())}
		chose webrtc.RTPCodecParameters
	)
	for _, p := range c.CodecParameters() {
		switch k := kindOf(p.RTPCodecCapability); k {
		case kindPCMU, kindPCMA:
			if b.audio == kindUnknown {
				b.audio, b.pt, chose = k, uint8(p.PayloadType), p
			}
		case kindEvent:
			if !b.hasEv {
				b.evPT, b.hasEv = uint8(p.PayloadType), true
			}
		}
	}
	if b.audio == kindUnknown {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	t.mu.Lock()
	t.b, t.ok = b, true
	t.mu.Unlock()
	return chose, nil
}

// Unbind implements webrtc.TrackLocal.
func (t *g711Track) Unbind(webrtc.TrackLocalContext) error {
	t.mu.Lock()
	t.b, t.ok = binding{}, false
	t.mu.Unlock()
	return nil
}

// ID implements webrtc.TrackLocal.
func (t *g711Track) ID() string { return t.id }

// RID implements webrtc.TrackLocal.
func (t *g711Track) RID() string { return "" }

// StreamID implements webrtc.TrackLocal.
func (t *g711Track) StreamID() string { return t.stream }

// Kind implements webrtc.TrackLocal.
func (t *g711Track) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// binding returns the current binding; ok is false before Bind or after Unbind.
func (t *g711Track) binding() (binding, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b, t.ok
}

// rtpWriter writes one RTP stream through a track: it owns the sequence number and the
// header, which it reuses, so writing a packet does not allocate on our side.
type rtpWriter struct {
	track *g711Track
	hdr   rtp.Header
}

func newRTPWriter(t *g711Track, seq uint16) *rtpWriter {
	return &rtpWriter{track: t, hdr: rtp.Header{Version: 2, SequenceNumber: seq}}
}

// write sends payload through b with payload type pt, timestamp ts and the marker bit. pion
// drops packets written before DTLS is up.
func (w *rtpWriter) write(b *binding, pt uint8, ts uint32, marker bool, payload []byte) error {
	w.hdr.PayloadType = pt
	w.hdr.SSRC = b.ssrc
	w.hdr.Timestamp = ts
	w.hdr.Marker = marker
	_, err := b.w.WriteRTP(&w.hdr, payload)
	w.hdr.SequenceNumber++
	return err
}
