package webrtc

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// checkOffer parses an SDP offer (RFC 8866) and checks that one audio section can carry the
// call: it is not rejected (port 0), it is sendrecv (RFC 3264 §6.1: the caller must both hear
// prompts and send digits), and it offers PCMU or PCMA at 8000 Hz, by rtpmap or by the static
// payload types 0 and 8 (RFC 3551 §6). It returns an error wrapping ErrBadOffer for text that
// is not an SDP offer with audio, and ErrNoCodec when no audio section qualifies. Errors never
// quote the offer.
func checkOffer(offer string) error {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return fmt.Errorf("%w: not SDP", ErrBadOffer)
	}
	audio := false
	for _, m := range sd.MediaDescriptions {
		if m == nil || m.MediaName.Media != "audio" {
			continue
		}
		audio = true
		if m.MediaName.Port.Value == 0 || !sendRecv(&sd, m) {
			continue
		}
		if offersG711(m) {
			return nil
		}
	}
	if !audio {
		return fmt.Errorf("%w: no audio section", ErrBadOffer)
	}
	return ErrNoCodec
}

// sendRecv reports whether m's direction (or the session's, when m has none) is sendrecv.
func sendRecv(sd *sdp.SessionDescription, m *sdp.MediaDescription) bool {
	for _, attrs := range [][]sdp.Attribute{m.Attributes, sd.Attributes} {
		for _, a := range attrs {
			switch a.Key {
			case "sendrecv":
				return true
			case "sendonly", "recvonly", "inactive":
				return false
			}
		}
	}
	return true // RFC 3264 §5.1: sendrecv is the default
}

// offersG711 reports whether m lists PCMU/8000 or PCMA/8000 among its formats.
func offersG711(m *sdp.MediaDescription) bool {
	names := map[string]string{} // payload type -> encoding name/clock
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		names[pt] = strings.ToUpper(strings.TrimSpace(enc))
	}
	for _, f := range m.MediaName.Formats {
		enc, mapped := names[f]
		if !mapped {
			switch f { // static payload types, RFC 3551 §6 table 4
			case "0":
				enc = "PCMU/8000"
			case "8":
				enc = "PCMA/8000"
			}
		}
		if _, err := strconv.ParseUint(f, 10, 7); err != nil {
			continue
		}
		switch enc {
		case "PCMU/8000", "PCMA/8000", "PCMU/8000/1", "PCMA/8000/1":
			return true
		}
	}
	return false
}
