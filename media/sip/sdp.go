package sip

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// SDP offer/answer (RFC 3264 over RFC 8866 session descriptions): we take one audio stream of
// G.711 (PCMU or PCMA, RFC 3551 §4.5.14) and, when offered, RFC 4733 telephone-event at 8 kHz.

// Static payload types of RFC 3551 §6 that we speak.
const (
	ptPCMU = 0
	ptPCMA = 8
)

// maxSDP bounds the session descriptions we parse.
const maxSDP = 16 << 10

// direction is an SDP media direction attribute (RFC 8866 §6.7).
type direction uint8

const (
	dirSendRecv direction = iota
	dirSendOnly
	dirRecvOnly
	dirInactive
)

func (d direction) String() string {
	switch d {
	case dirSendOnly:
		return "sendonly"
	case dirRecvOnly:
		return "recvonly"
	case dirInactive:
		return "inactive"
	}
	return "sendrecv"
}

// reverse is the answer's direction for an offer's (RFC 3264 §6.1).
func (d direction) reverse() direction {
	switch d {
	case dirSendOnly:
		return dirRecvOnly
	case dirRecvOnly:
		return dirSendOnly
	}
	return d
}

// sends reports whether the side with direction d sends media.
func (d direction) sends() bool { return d == dirSendRecv || d == dirSendOnly }

// receives reports whether the side with direction d receives media.
func (d direction) receives() bool { return d == dirSendRecv || d == dirRecvOnly }

// session is what a negotiation settled: the peer's side of the audio stream.
type session struct {
	// pt is the G.711 payload type, alaw tells PCMA from PCMU.
	pt   uint8
	alaw bool
	// tePT is the telephone-event payload type, or -1 when the peer offered none.
	tePT int
	// remote is where the peer receives RTP; invalid when it asked not to be sent to
	// (port 0 or c=0.0.0.0, RFC 3264 §8.4).
	remote netip.AddrPort
	// dir is the peer's direction; ours is dir.reverse().
	dir direction
	// index is the position of the audio m= line we took; lines is the number of m= lines,
	// which the answer must repeat (RFC 3264 §6).
	index int
	lines []*sdp.MediaDescription
}

// codecName is the rtpmap encoding name of the negotiated codec.
func (s *session) codecName() string {
	if s.alaw {
		return "PCMA"
	}
	return "PCMU"
}

// sdpBody returns the session description in a message body of type contentType: the body
// itself for application/sdp, the first application/sdp part of a multipart body (RFC 5621,
// SIP-I trunks add ISUP). It returns nil when the body has no session description.
func sdpBody(contentType string, body []byte) ([]byte, error) {
	if len(body) == 0 {
		return nil, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("%w: content type: %v", ErrSDP, err)
	}
	switch {
	case mt == "application/sdp":
		return body, nil
	case strings.HasPrefix(mt, "multipart/"):
		if params["boundary"] == "" {
			return nil, fmt.Errorf("%w: multipart body without boundary", ErrSDP)
		}
		r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for i := 0; i < 8; i++ {
			p, err := r.NextPart()
			if err != nil {
				return nil, nil
			}
			pmt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
			if pmt != "application/sdp" {
				continue
			}
			b, err := io.ReadAll(io.LimitReader(p, maxSDP+1))
			if err != nil || len(b) > maxSDP {
				return nil, fmt.Errorf("%w: multipart sdp part unreadable", ErrSDP)
			}
			return b, nil
		}
		return nil, nil
	}
	return nil, nil
}

// parseSDP unmarshals a session description. pion/sdp is strict about the order and presence
// of lines; the one common omission, the t= line, is repaired.
func parseSDP(body []byte) (*sdp.SessionDescription, error) {
	if len(body) > maxSDP {
		return nil, fmt.Errorf("%w: %d bytes is too large", ErrSDP, len(body))
	}
	d := &sdp.SessionDescription{}
	err := d.Unmarshal(body)
	if err != nil && !bytes.Contains(body, []byte("\nt=")) {
		if i := bytes.Index(body, []byte("\nm=")); i >= 0 {
			fixed := make([]byte, 0, len(body)+8)
			fixed = append(append(append(fixed, body[:i+1]...), "t=0 0\r\n"...), body[i+1:]...)
			d = &sdp.SessionDescription{}
			err = d.Unmarshal(fixed)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSDP, err)
	}
	return d, nil
}

// negotiate picks the stream we take from an offer (or an answer to our offer): the first
// audio m= line over RTP/AVP with a non-zero port, the first of PCMU or PCMA in the peer's
// order of preference, and telephone-event/8000 when present.
func negotiate(body []byte) (*session, error) {
	d, err := parseSDP(body)
	if err != nil {
		return nil, err
	}
	if len(d.MediaDescriptions) == 0 {
		return nil, fmt.Errorf("%w: no media", ErrSDP)
	}
	var why string
	for i, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 {
			continue
		}
		if proto := strings.Join(m.MediaName.Protos, "/"); !strings.EqualFold(proto, "RTP/AVP") {
			why = "audio over " + proto + ", not RTP/AVP"
			continue
		}
		s, reason := pickCodecs(m)
		if s == nil {
			why = reason
			continue
		}
		s.index, s.lines = i, d.MediaDescriptions
		s.dir = mediaDirection(d, m)
		addr, err := connectionAddr(d, m)
		if err != nil {
			return nil, err
		}
		port := m.MediaName.Port.Value
		if port < 1 || port > 65535 {
			return nil, fmt.Errorf("%w: port %d", ErrSDP, port)
		}
		if addr.IsValid() && !addr.IsUnspecified() {
			s.remote = netip.AddrPortFrom(addr, uint16(port))
		}
		return s, nil
	}
	if why == "" {
		why = "no audio stream"
	}
	return nil, fmt.Errorf("%w: %s", ErrSDP, why)
}

// pickCodecs chooses the codec and telephone-event payload types of one m= line.
func pickCodecs(m *sdp.MediaDescription) (*session, string) {
	type entry struct {
		name string
		rate int
	}
	maps := map[int]entry{}
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, name, rate, ok := parseRtpmap(a.Value)
		if ok {
			maps[pt] = entry{name, rate}
		}
	}
	s := &session{tePT: -1}
	found := false
	for _, f := range m.MediaName.Formats {
		pt, err := strconv.Atoi(f)
		if err != nil || pt < 0 || pt > 127 {
			continue
		}
		e, mapped := maps[pt]
		if !mapped {
			switch pt {
			case ptPCMU:
				e = entry{"PCMU", 8000}
			case ptPCMA:
				e = entry{"PCMA", 8000}
			}
		}
		switch {
		case !found && e.rate == 8000 && strings.EqualFold(e.name, "PCMU"):
			s.pt, s.alaw, found = uint8(pt), false, true
		case !found && e.rate == 8000 && strings.EqualFold(e.name, "PCMA"):
			s.pt, s.alaw, found = uint8(pt), true, true
		case s.tePT < 0 && e.rate == 8000 && strings.EqualFold(e.name, "telephone-event"):
			s.tePT = pt
		}
	}
	if !found {
		return nil, "no PCMU or PCMA at 8000 Hz"
	}
	return s, ""
}

// parseRtpmap parses an rtpmap value "<pt> <name>/<rate>[/<channels>]" (RFC 8866 §6.6).
func parseRtpmap(v string) (pt int, name string, rate int, ok bool) {
	ptStr, rest, found := strings.Cut(strings.TrimSpace(v), " ")
	if !found {
		return 0, "", 0, false
	}
	pt, err := strconv.Atoi(ptStr)
	if err != nil || pt < 0 || pt > 127 {
		return 0, "", 0, false
	}
	parts := strings.Split(strings.TrimSpace(rest), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return 0, "", 0, false
	}
	rate, err = strconv.Atoi(parts[1])
	if err != nil || rate <= 0 {
		return 0, "", 0, false
	}
	if len(parts) == 3 && parts[2] != "1" {
		return 0, "", 0, false // stereo G.711 is not for us
	}
	return pt, parts[0], rate, true
}

// mediaDirection is the m= line's direction, else the session's, else sendrecv.
func mediaDirection(d *sdp.SessionDescription, m *sdp.MediaDescription) direction {
	for _, attrs := range [][]sdp.Attribute{m.Attributes, d.Attributes} {
		for _, a := range attrs {
			switch a.Key {
			case "sendrecv":
				return dirSendRecv
			case "sendonly":
				return dirSendOnly
			case "recvonly":
				return dirRecvOnly
			case "inactive":
				return dirInactive
			}
		}
	}
	return dirSendRecv
}

// connectionAddr is the m= line's c= address, else the session's. 0.0.0.0 (RFC 2543 hold)
// comes back as the unspecified address.
func connectionAddr(d *sdp.SessionDescription, m *sdp.MediaDescription) (netip.Addr, error) {
	ci := m.ConnectionInformation
	if ci == nil {
		ci = d.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return netip.Addr{}, fmt.Errorf("%w: no connection address", ErrSDP)
	}
	if ci.NetworkType != "IN" || (ci.AddressType != "IP4" && ci.AddressType != "IP6") {
		return netip.Addr{}, fmt.Errorf("%w: connection type %s %s", ErrSDP, ci.NetworkType, ci.AddressType)
	}
	a, err := netip.ParseAddr(ci.Address.Address)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%w: connection address is not an IP address", ErrSDP)
	}
	if a.Is4() != (ci.AddressType == "IP4") {
		return netip.Addr{}, fmt.Errorf("%w: connection address does not match its type", ErrSDP)
	}
	if a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%w: multicast connection address", ErrSDP)
	}
	return a.Unmap(), nil
}

// origin is our SDP o= line's session id and version (RFC 8866 §5.2): the version grows with
// every new description of the session.
type origin struct {
	id      uint64
	version uint64
}

func newOrigin() origin {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return origin{id: binary.BigEndian.Uint64(b[:]) >> 2, version: 1}
}

// localMedia is what our side of the description says.
type localMedia struct {
	ip   netip.Addr
	port int
}

// answerSDP builds our answer to s: the chosen stream with our address, codec and
// telephone-event, every other m= line refused with port 0 (RFC 3264 §6).
func answerSDP(o origin, l localMedia, s *session) ([]byte, error) {
	d := baseSDP(o, l)
	for i, m := range s.lines {
		if i != s.index {
			formats := m.MediaName.Formats
			if len(formats) == 0 {
				formats = []string{"0"}
			}
			d.MediaDescriptions = append(d.MediaDescriptions, &sdp.MediaDescription{
				MediaName: sdp.MediaName{Media: m.MediaName.Media, Port: sdp.RangedPort{Value: 0},
					Protos: m.MediaName.Protos, Formats: formats},
			})
			continue
		}
		d.MediaDescriptions = append(d.MediaDescriptions, audioLine(l.port, s.pt, s.codecName(), s.tePT, s.dir.reverse()))
	}
	return d.Marshal()
}

// offerSDP builds our offer for an INVITE that came without one (RFC 3261 §13.2.1: the answer
// comes in the ACK): PCMU, PCMA and telephone-event 101.
func offerSDP(o origin, l localMedia) ([]byte, error) {
	d := baseSDP(o, l)
	m := audioLine(l.port, ptPCMU, "PCMU", 101, dirSendRecv)
	m.MediaName.Formats = []string{"0", "8", "101"}
	m.Attributes = append([]sdp.Attribute{
		sdp.NewAttribute("rtpmap", "0 PCMU/8000"),
		sdp.NewAttribute("rtpmap", "8 PCMA/8000"),
	}, m.Attributes[1:]...)
	d.MediaDescriptions = append(d.MediaDescriptions, m)
	return d.Marshal()
}

func baseSDP(o origin, l localMedia) *sdp.SessionDescription {
	addrType := "IP4"
	if l.ip.Is6() {
		addrType = "IP6"
	}
	ip := l.ip.String()
	return &sdp.SessionDescription{
		Origin: sdp.Origin{Username: "callproof", SessionID: o.id, SessionVersion: o.version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: ip},
		SessionName:           "callproof",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: ip}},
		TimeDescriptions:      []sdp.TimeDescription{{Timing: sdp.Timing{}}},
	}
}

func audioLine(port int, pt uint8, codec string, tePT int, dir direction) *sdp.MediaDescription {
	m := &sdp.MediaDescription{
		MediaName: sdp.MediaName{Media: "audio", Port: sdp.RangedPort{Value: port},
			Protos: []string{"RTP", "AVP"}, Formats: []string{strconv.Itoa(int(pt))}},
		Attributes: []sdp.Attribute{sdp.NewAttribute("rtpmap", strconv.Itoa(int(pt))+" "+codec+"/8000")},
	}
	if tePT >= 0 {
		te := strconv.Itoa(tePT)
		m.MediaName.Formats = append(m.MediaName.Formats, te)
		m.Attributes = append(m.Attributes,
			sdp.NewAttribute("rtpmap", te+" telephone-event/8000"),
			sdp.NewAttribute("fmtp", te+" 0-15"))
	}
	m.Attributes = append(m.Attributes, sdp.NewAttribute("ptime", "20"), sdp.NewPropertyAttribute(dir.String()))
	return m
}
