package twilio

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsjson"
)

// Paths Twilio is pointed at.
const (
	// StreamPath is the WebSocket path of the media stream.
	StreamPath = "/v1/twilio"
	// VoicePath is the path of the voice webhook that returns the TwiML.
	VoicePath = "/v1/twilio/voice"
)

// Defaults.
const (
	DefaultReadLimit    = wsjson.DefaultReadLimit
	DefaultStartTimeout = wsjson.DefaultStartTimeout
)

// Config is the deployment data of the Twilio adapter.
type Config struct {
	// AuthToken is the Twilio account's auth token, the key of X-Twilio-Signature. "" turns
	// signature checks off (local demos and tests only).
	AuthToken string
	// PublicURL is the base URL Twilio reaches this server at, e.g. https://cp.example.com
	// (a path prefix is kept). The stream URL put in TwiML and signed by Twilio is
	// wss://<host><prefix>/v1/twilio, whatever PublicURL's scheme. "" derives the host from
	// each request's Host header.
	PublicURL string
	// ReadLimit is the largest inbound message accepted, in bytes. Default 64 KiB; larger
	// messages end the call with close code 1009.
	ReadLimit int64
	// DTMF chooses which digit sources a leg believes. Default media.DTMFAuto.
	DTMF media.DTMFMode
	// NewDetector makes one in-band DTMF detector per call; nil means no in-band detection.
	// Required when DTMF is media.DTMFInband.
	NewDetector func() media.ToneDetector
	// StartTimeout bounds the wait for "connected" and "start" after the upgrade. Default
	// 10s; a stream that has not started by then is closed with 1008.
	StartTimeout time.Duration
}

// Validate reports the first problem with c, wrapped in ErrConfig. Zero values are defaults.
func (c Config) Validate() error {
	if c.PublicURL != "" {
		if _, err := parsePublicURL(c.PublicURL); err != nil {
			return err
		}
	}
	if err := wsjson.CheckConfig(c.ReadLimit, c.StartTimeout, c.DTMF, c.NewDetector != nil); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.ReadLimit == 0 {
		c.ReadLimit = DefaultReadLimit
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	return c
}

func parsePublicURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: public url: %v", ErrConfig, err)
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return nil, fmt.Errorf("%w: public url %q: want https://host", ErrConfig, s)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: public url %q: want https://host with no user, query or fragment", ErrConfig, s)
	}
	return u, nil
}

// StreamURL is the URL of the media stream as Twilio dials and signs it: wss:// with the host
// and path prefix of publicURL, or of host when publicURL is "", then StreamPath.
func StreamURL(publicURL, host string) string {
	return "wss://" + publicBase(publicURL, host) + StreamPath
}

// publicBase returns host+prefix from publicURL, or host.
func publicBase(publicURL, host string) string {
	if publicURL != "" {
		if u, err := url.Parse(publicURL); err == nil && u.Host != "" {
			return u.Host + strings.TrimSuffix(u.EscapedPath(), "/")
		}
	}
	return host
}
