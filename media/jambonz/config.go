package jambonz

import (
	"fmt"
	"strings"
	"time"

	"github.com/callproof/callproof/media"
)

// StreamPath is the WebSocket path the listen verb's url points at.
const StreamPath = "/v1/jambonz"

// Subprotocol is the WebSocket subprotocol jambonz offers.
const Subprotocol = "audio.jambonz.org"

// Defaults.
const (
	// DefaultReadLimit fits five seconds of 16 kHz audio, the most a media server buffers
	// before dropping (MOD_AUDIO_FORK_BUFFER_SECS).
	DefaultReadLimit    = 256 << 10
	DefaultStartTimeout = 10 * time.Second
	DefaultMaxLead      = time.Second
)

// Config is the deployment data of the jambonz adapter.
type Config struct {
	// Username and Password are the listen verb's wsAuth, checked as HTTP Basic credentials
	// on the upgrade. Both "" turns authentication off (local demos and tests only).
	Username, Password string
	// ReadLimit is the largest inbound message accepted, in bytes. Default 256 KiB; larger
	// messages end the call with 1009.
	ReadLimit int64
	// StartTimeout bounds the wait for the metadata message after the upgrade. Default 10 s.
	StartTimeout time.Duration
	// MaxLead is how much audio the leg keeps queued at jambonz ahead of playback. Default
	// 1 s, at most 10 s.
	MaxLead time.Duration
	// DTMF chooses which digit sources a leg believes (the verb needs passDtmf for events).
	// Default media.DTMFAuto.
	DTMF media.DTMFMode
	// NewDetector makes one in-band DTMF detector per call for audio at the given rate
	// (media.SampleRate); nil means no in-band detection. Required when DTMF is DTMFInband.
	NewDetector func(rate int) media.ToneDetector
}

// Validate reports the first problem with c, wrapped in ErrConfig. Zero values are defaults.
func (c Config) Validate() error {
	switch {
	case (c.Username == "") != (c.Password == ""):
		return fmt.Errorf("%w: set both username and password (wsAuth), or neither", ErrConfig)
	case strings.ContainsRune(c.Username, ':'):
		return fmt.Errorf("%w: username must not contain ':' (HTTP Basic, RFC 7617)", ErrConfig)
	case c.ReadLimit < 0:
		return fmt.Errorf("%w: read limit %d is negative", ErrConfig, c.ReadLimit)
	case c.ReadLimit > 0 && c.ReadLimit < 4096:
		return fmt.Errorf("%w: read limit %d is below 4096 bytes; the metadata would not fit", ErrConfig, c.ReadLimit)
	case c.ReadLimit > 16<<20:
		return fmt.Errorf("%w: read limit %d is above 16 MiB", ErrConfig, c.ReadLimit)
	case c.StartTimeout < 0:
		return fmt.Errorf("%w: start timeout %s is negative", ErrConfig, c.StartTimeout)
	case c.MaxLead < 0 || c.MaxLead > 10*time.Second:
		return fmt.Errorf("%w: max lead %s: want 0 (default) to 10s", ErrConfig, c.MaxLead)
	case c.MaxLead > 0 && c.MaxLead < 100*time.Millisecond:
		return fmt.Errorf("%w: max lead %s is below 100ms; playback would stutter", ErrConfig, c.MaxLead)
	case c.DTMF > media.DTMFInband:
		return fmt.Errorf("%w: unknown dtmf mode %d", ErrConfig, c.DTMF)
	case c.DTMF == media.DTMFInband && c.NewDetector == nil:
		return fmt.Errorf("%w: dtmf mode inband needs NewDetector", ErrConfig)
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
	if c.MaxLead == 0 {
		c.MaxLead = DefaultMaxLead
	}
	return c
}
