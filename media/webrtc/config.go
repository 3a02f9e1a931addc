package webrtc

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/pion/stun/v4"

	"github.com/callproof/callproof/media"
)

// OfferPath is the path of the offer endpoint (POST); each call's resource is OfferPath/<id>
// (DELETE hangs up).
const OfferPath = "/v1/webrtc"

// Defaults.
const (
	DefaultMediaTimeout    = 10 * time.Second
	DefaultOffersPerMinute = 10
	DefaultMaxOfferBytes   = 64 << 10
	DefaultMaxCalls        = 500
)

// Config is the deployment data of the WebRTC adapter. The zero value serves calls on
// ephemeral UDP ports with the defaults below.
type Config struct {
	// PortMin and PortMax bound the UDP ports ICE gathers on (both inclusive). Both 0 (the
	// default) means ephemeral ports; otherwise 0 < PortMin <= PortMax. Each call uses one port.
	PortMin, PortMax uint16
	// PublicIPs replace the server's host candidate addresses in answers (an ICE address
	// rewrite rule, for a server behind a 1:1 NAT). Only the address families they cover are
	// gathered, so no internal address is published. Empty (the default) publishes the
	// interface addresses.
	PublicIPs []string
	// ICEServers are stun:, stuns:, turn: and turns: URLs the server gathers server-reflexive
	// and relay candidates from. Empty (the default) gathers host candidates only.
	ICEServers []string
	// TURNUsername and TURNCredential authenticate to the turn: and turns: servers. Required
	// when ICEServers has one.
	TURNUsername, TURNCredential string
	// AllowLoopback gathers host candidates on loopback interfaces too. Tests and local
	// demos only (default false).
	AllowLoopback bool
	// MediaTimeout ends a call that has received no RTP for this long, counted from the
	// answer. Default 10s; at least 100ms.
	MediaTimeout time.Duration
	// OffersPerMinute is how many offers one source address (an IPv4 address or an IPv6 /64)
	// may make per minute, in a burst of the same size; more are refused with 429. Default 10.
	OffersPerMinute int
	// MaxOfferBytes is the largest offer accepted; larger ones are refused with 413. Default
	// 64 KiB; at least 1 KiB.
	MaxOfferBytes int
	// MaxCalls caps the calls live at once; further offers are refused with 503. Default 500.
	MaxCalls int
	// DTMF chooses which digit sources a leg believes. Default media.DTMFAuto. Browsers send
	// RFC 4733 events, so in-band detection is only a fallback.
	DTMF media.DTMFMode
	// NewDetector makes one in-band DTMF detector per call; nil means no in-band detection.
	// Required when DTMF is media.DTMFInband.
	NewDetector func() media.ToneDetector
}

// Validate reports the first problem with c, wrapped in ErrConfig. Zero values are defaults.
func (c Config) Validate() error {
	switch {
	case c.PortMin == 0 && c.PortMax != 0, c.PortMin != 0 && c.PortMax == 0:
		return fmt.Errorf("%w: port range %d-%d: set both ends or neither", ErrConfig, c.PortMin, c.PortMax)
	case c.PortMin > c.PortMax:
		return fmt.Errorf("%w: port range %d-%d is empty", ErrConfig, c.PortMin, c.PortMax)
	case c.MediaTimeout < 0:
		return fmt.Errorf("%w: media timeout %s is negative", ErrConfig, c.MediaTimeout)
	case c.MediaTimeout > 0 && c.MediaTimeout < 100*time.Millisecond:
		return fmt.Errorf("%w: media timeout %s is below 100ms; packets arrive every 20ms but networks jitter", ErrConfig, c.MediaTimeout)
	case c.OffersPerMinute < 0:
		return fmt.Errorf("%w: offers per minute %d is negative", ErrConfig, c.OffersPerMinute)
	case c.MaxOfferBytes < 0:
		return fmt.Errorf("%w: max offer bytes %d is negative", ErrConfig, c.MaxOfferBytes)
	case c.MaxOfferBytes > 0 && c.MaxOfferBytes < 1024:
		return fmt.Errorf("%w: max offer bytes %d is below 1 KiB; no browser offer fits", ErrConfig, c.MaxOfferBytes)
	case c.MaxOfferBytes > 1<<20:
		return fmt.Errorf("%w: max offer bytes %d is above 1 MiB", ErrConfig, c.MaxOfferBytes)
	case c.MaxCalls < 0:
		return fmt.Errorf("%w: max calls %d is negative", ErrConfig, c.MaxCalls)
	case c.DTMF > media.DTMFInband:
		return fmt.Errorf("%w: unknown dtmf mode %d", ErrConfig, c.DTMF)
	case c.DTMF == media.DTMFInband && c.NewDetector == nil:
		return fmt.Errorf("%w: dtmf mode inband needs NewDetector", ErrConfig)
	}
	for _, s := range c.PublicIPs {
		ip := net.ParseIP(s)
		if ip == nil || ip.IsUnspecified() {
			return fmt.Errorf("%w: public ip %q is not an IP address", ErrConfig, s)
		}
	}
	turn := false
	for _, s := range c.ICEServers {
		u, err := stun.ParseURI(s)
		if err != nil {
			return fmt.Errorf("%w: ice server %q: %v", ErrConfig, redactURL(s), err)
		}
		if u.Scheme == stun.SchemeTypeTURN || u.Scheme == stun.SchemeTypeTURNS {
			turn = true
		}
	}
	if turn && (c.TURNUsername == "" || c.TURNCredential == "") {
		return fmt.Errorf("%w: a turn: server needs TURNUsername and TURNCredential", ErrConfig)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MediaTimeout == 0 {
		c.MediaTimeout = DefaultMediaTimeout
	}
	if c.OffersPerMinute == 0 {
		c.OffersPerMinute = DefaultOffersPerMinute
	}
	if c.MaxOfferBytes == 0 {
		c.MaxOfferBytes = DefaultMaxOfferBytes
	}
	if c.MaxCalls == 0 {
		c.MaxCalls = DefaultMaxCalls
	}
	return c
}

// redactURL drops anything after '?' (a TURN URL may carry transport and, in some
// deployments, credentials) so the URL can go into an error message.
func redactURL(s string) string {
	if i := strings.IndexAny(s, "?@"); i >= 0 {
		return s[:i] + "…"
	}
	return s
}
