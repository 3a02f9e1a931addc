package wsjson

import "github.com/callproof/callproof/media"

// The bodies of media, dtmf and mark messages are alike in both dialects; these read them and
// report to the stream. Each allocates nothing once the buffers have grown.

// MediaFrame is a media message as ReadMedia returns it.
type MediaFrame struct {
	// Chunk and Timestamp are the frame's counters (Timestamp when HasTimestamp).
	Chunk, Timestamp uint64
	HasTimestamp     bool
	// Audio is the decoded payload, valid until the next ReadMedia with the same buffer.
	Audio []byte
}

// ReadMedia parses the media object raw into fr: payload and chunk are required, timestamp
// too when requireTimestamp; counters must be decimal and the payload base64, decoded into
// *buf. It reports inbound false for a frame of another track than "inbound", which it
// counts as a drop; inbound frames are counted in FramesIn.
func (s *Stream) ReadMedia(p *Parser, raw []byte, requireTimestamp bool, buf *[]byte, fr *MediaFrame) (inbound bool, err error) {
	if raw == nil {
		return false, Violationf(CloseInvalid, "media message has no media object")
	}
	var f mediaFields
	if err := p.media(raw, &f); err != nil {
		return false, err
	}
	switch {
	case requireTimestamp && (!f.HasPayload || !f.HasChunk || !f.HasTimestamp):
		return false, Violationf(CloseInvalid, "media needs payload, chunk and timestamp")
	case !f.HasPayload || !f.HasChunk:
		return false, Violationf(CloseInvalid, "media needs payload and chunk")
	}
	var ok bool
	if fr.Chunk, ok = ParseCounter(f.Chunk); !ok {
		return false, Violationf(CloseInvalid, "media.chunk is not a decimal counter")
	}
	fr.Timestamp, fr.HasTimestamp = 0, f.HasTimestamp
	if f.HasTimestamp {
		if fr.Timestamp, ok = ParseCounter(f.Timestamp); !ok {
			return false, Violationf(CloseInvalid, "media.timestamp is not a decimal counter")
		}
	}
	if fr.Audio, err = DecodeBase64(buf, f.Payload, "media.payload"); err != nil {
		return false, err
	}
	if len(f.Track) != 0 && string(f.Track) != "inbound" {
		s.count.Drops.Add(1)
		return false, nil
	}
	s.count.FramesIn.Add(1)
	return true, nil
}

// ReadDTMF handles a dtmf object: its digit goes to the receiver as a platform digit event.
func (s *Stream) ReadDTMF(p *Parser, raw []byte) error {
	if raw == nil {
		return Violationf(CloseInvalid, "dtmf message has no dtmf object")
	}
	v, ok, err := p.StringMember(raw, "dtmf", "digit")
	if err != nil {
		return err
	}
	d, valid := Digit(v)
	if !ok || !valid {
		return Violationf(CloseInvalid, "dtmf.digit is not one of 0-9, *, #, A-D")
	}
	s.rx.Digit(d, media.SourceEvent)
	return nil
}

// ReadMark handles a mark object, the echo of a mark we sent: see Ack.
func (s *Stream) ReadMark(p *Parser, raw []byte) error {
	if raw == nil {
		return Violationf(CloseInvalid, "mark message has no mark object")
	}
	name, ok, err := p.StringMember(raw, "mark", "name")
	if err != nil {
		return err
	}
	if !ok {
		return Violationf(CloseInvalid, "mark.name is missing")
	}
	return s.Ack(name)
}
