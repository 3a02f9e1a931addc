package sip

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callproof/callproof/media"
)

// Defaults.
const (
	DefaultListen          = ":5060"
	DefaultRealm           = "callproof"
	DefaultRequestHeader   = "X-Callproof-Request"
	DefaultLangHeader      = "X-Callproof-Lang"
	DefaultTokenHeader     = "X-Callproof-Token"
	DefaultRTPTimeout      = 10 * time.Second
	DefaultTransferTimeout = 10 * time.Second
)

// Config is the deployment data of the SIP user agent server. Zero values are defaults.
type Config struct {
	// Listen is the address SIP is served on, UDP and TCP on the same port, e.g.
	// "127.0.0.1:5060". Default ":5060". Port 0 picks a free port (tests).
	Listen string
	// RTPPortMin and RTPPortMax bound the UDP ports of the per-call RTP sockets (even ports
	// are used; RTCP on port+1 is not bound). Both 0 (the default) lets the system choose.
	RTPPortMin, RTPPortMax int
	// PublicIP is the address put in our SDP (c= and o=), Contact and Via. Default: Listen's
	// host when it is a specific address, else the local address the system routes toward
	// each caller (right on one-homed hosts; set PublicIP behind NAT).
	PublicIP string
	// Realm is the digest authentication realm. Default "callproof".
	Realm string
	// Users are the digest credentials (user -> password) trunks answer a 401 challenge with.
	// With Users and AllowFrom both empty every INVITE is refused with 403.
	Users map[string]string
	// AllowFrom lists the networks whose INVITEs are admitted without a challenge (the
	// trunk's signalling addresses).
	AllowFrom []netip.Prefix
	// RequestHeader and LangHeader name the INVITE headers carrying the CCPA request type and
	// the language. Defaults "X-Callproof-Request" and "X-Callproof-Lang".
	RequestHeader, LangHeader string
	// DialedMap maps the dialled number (the Request-URI's user part) to a request type, for
	// trunks that cannot add headers: one number per request type. A header wins over it.
	DialedMap map[string]string
	// TransferURI is where a finished call is sent with REFER (RFC 3515), e.g.
	// "sip:agents@pbx.example.com". Empty: a finished call is ended with BYE.
	TransferURI string
	// TokenHeader names the header that carries the verification token on the REFER (and, as
	// a URI header of Refer-To, into the transferee's INVITE). Default "X-Callproof-Token".
	TokenHeader string
	// RTPTimeout ends a call (BYE) when the caller's RTP stopped for this long while the
	// caller is meant to be sending. Default 10s.
	RTPTimeout time.Duration
	// TransferTimeout bounds the wait for the REFER's final NOTIFY before the BYE. Default 10s.
	TransferTimeout time.Duration
	// InvitesPerMinute and InvitesBurst limit new calls from one source address (one /64 for
	// IPv6); beyond them an INVITE gets 503 with Retry-After. Defaults 60 and 20; a negative
	// rate turns the limit off (a trunk that carries every call from one address may need
	// that, with AllowFrom).
	InvitesPerMinute, InvitesBurst int
	// DTMF chooses which digit sources a leg believes. Default media.DTMFAuto.
	DTMF media.DTMFMode
	// NewDetector makes one in-band DTMF detector per call; nil means no in-band detection.
	// Required when DTMF is media.DTMFInband. It is not fed once the caller has sent an RFC
	// 4733 event, so a gateway that sends both is heard once.
	NewDetector func() media.ToneDetector
}

// Validate reports the first problem with c, wrapped in ErrConfig.
func (c Config) Validate() error {
	listen := c.Listen
	if listen == "" {
		listen = DefaultListen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("%w: listen %q: want host:port", ErrConfig, listen)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%w: listen %q: bad port", ErrConfig, listen)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%w: listen %q: host must be an IP address", ErrConfig, listen)
		}
	}
	switch {
	case c.RTPPortMin < 0 || c.RTPPortMax < 0 || c.RTPPortMin > 65535 || c.RTPPortMax > 65535:
		return fmt.Errorf("%w: rtp ports %d-%d out of range", ErrConfig, c.RTPPortMin, c.RTPPortMax)
	case (c.RTPPortMin == 0) != (c.RTPPortMax == 0):
		return fmt.Errorf("%w: set both rtp port bounds or neither", ErrConfig)
	case c.RTPPortMin > c.RTPPortMax:
		return fmt.Errorf("%w: rtp port min %d above max %d", ErrConfig, c.RTPPortMin, c.RTPPortMax)
	case c.RTPPortMin > 0 && c.RTPPortMin < 1024:
		return fmt.Errorf("%w: rtp port min %d is a privileged port", ErrConfig, c.RTPPortMin)
	case c.RTPTimeout < 0:
		return fmt.Errorf("%w: rtp timeout %s is negative", ErrConfig, c.RTPTimeout)
	case c.RTPTimeout > 0 && c.RTPTimeout < 500*time.Millisecond:
		return fmt.Errorf("%w: rtp timeout %s is below 500ms", ErrConfig, c.RTPTimeout)
	case c.TransferTimeout < 0:
		return fmt.Errorf("%w: transfer timeout %s is negative", ErrConfig, c.TransferTimeout)
	case c.DTMF > media.DTMFInband:
		return fmt.Errorf("%w: unknown dtmf mode %d", ErrConfig, c.DTMF)
	case c.DTMF == media.DTMFInband && c.NewDetector == nil:
		return fmt.Errorf("%w: dtmf mode inband needs NewDetector", ErrConfig)
	}
	if c.PublicIP != "" {
		a, err := netip.ParseAddr(c.PublicIP)
		if err != nil || a.IsUnspecified() || a.Zone() != "" {
			return fmt.Errorf("%w: public ip %q is not a unicast IP address", ErrConfig, c.PublicIP)
		}
	}
	for u, p := range c.Users {
		if u == "" || !isToken(u) {
			return fmt.Errorf("%w: digest user %q: want a non-empty token", ErrConfig, u)
		}
		if p == "" {
			return fmt.Errorf("%w: digest user %q has an empty password", ErrConfig, u)
		}
	}
	for i, p := range c.AllowFrom {
		if !p.IsValid() {
			return fmt.Errorf("%w: allow-from entry %d is not a valid prefix", ErrConfig, i)
		}
	}
	for name, h := range map[string]string{"request": c.RequestHeader, "lang": c.LangHeader, "token": c.TokenHeader} {
		if h != "" && !isToken(h) {
			return fmt.Errorf("%w: %s header name %q is not a SIP token", ErrConfig, name, h)
		}
	}
	for k, v := range c.DialedMap {
		if k == "" || v == "" {
			return fmt.Errorf("%w: dialled map entries need a number and a request type", ErrConfig)
		}
	}
	if c.TransferURI != "" {
		if _, err := parseTarget(c.TransferURI); err != nil {
			return fmt.Errorf("%w: transfer uri: %v", ErrConfig, err)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.RequestHeader == "" {
		c.RequestHeader = DefaultRequestHeader
	}
	if c.LangHeader == "" {
		c.LangHeader = DefaultLangHeader
	}
	if c.TokenHeader == "" {
		c.TokenHeader = DefaultTokenHeader
	}
	if c.RTPTimeout == 0 {
		c.RTPTimeout = DefaultRTPTimeout
	}
	if c.TransferTimeout == 0 {
		c.TransferTimeout = DefaultTransferTimeout
	}
	return c
}

// parseTarget parses a transfer target: a sip: or sips: URI with a host and no URI headers
// of its own (we add ours).
func parseTarget(s string) (sip.Uri, error) {
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		return u, fmt.Errorf("%q is not a SIP URI", s)
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "sip" && scheme != "sips") || u.Host == "" {
		return u, fmt.Errorf("%q: want sip:user@host", s)
	}
	if u.Headers.Length() > 0 {
		return u, fmt.Errorf("%q: URI headers are not allowed", s)
	}
	return u, nil
}

// isToken reports whether s is an RFC 3261 §25.1 token (header names, user names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-.!%*_+`'~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
