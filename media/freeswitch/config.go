package freeswitch

import (
	"fmt"
	"strings"
	"time"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsaudio"
)

// StreamPath is the WebSocket path uuid_audio_fork is pointed at.
const StreamPath = "/v1/freeswitch"

// DefaultSubprotocol is the WebSocket subprotocol drachtio's mod_audio_fork offers.
const DefaultSubprotocol = "audio.drachtio.org"

// Defaults.
const (
	// DefaultReadLimit fits five seconds of 16 kHz audio, the most the module buffers
	// (MOD_AUDIO_FORK_BUFFER_SECS) before dropping.
	DefaultReadLimit    = 256 << 10
	DefaultStartTimeout = 10 * time.Second
)

// Config is the deployment data of the FreeSWITCH adapter.
type Config struct {
	// Username and Password are checked as HTTP Basic credentials on the upgrade. Both ""
	// turns authentication off (local demos and tests only).
	Username, Password string
	// Subprotocol is the WebSocket subprotocol required of the module. Default
	// audio.drachtio.org; jambonz's FreeSWITCH build offers audio.jambonz.org.
	Subprotocol string
	// SampleRate is the rate assumed when the metadata has no sampleRate: 8000 (default) or
	// 16000, matching the uuid_audio_fork argument.
	SampleRate int
	// ReadLimit is the largest inbound message accepted, in bytes. Default 256 KiB; larger
	// messages end the call with 1009.
	ReadLimit int64
	// StartTimeout bounds the wait for the metadata message after the upgrade. Default 10 s.
	StartTimeout time.Duration
	// DTMF chooses which digit sources a leg believes: media.DTMFAuto (default) or
	// media.DTMFInband; the module sends no digit events, so DTMFEvents is refused.
	DTMF media.DTMFMode
	// NewDetector makes one in-band DTMF detector per call for audio at the given rate
	// (media.SampleRate). Without it no digits are found at all; required for DTMFInband.
	NewDetector func(rate int) media.ToneDetector
}

// Validate reports the first problem with c, wrapped in ErrConfig. Zero values are defaults.
func (c Config) Validate() error {
	switch {
	case (c.Username == "") != (c.Password == ""):
		return fmt.Errorf("%w: set both username and password, or neither", ErrConfig)
	case strings.ContainsRune(c.Username, ':'):
		return fmt.Errorf("%w: username must not contain ':' (HTTP Basic, RFC 7617)", ErrConfig)
	case c.Subprotocol != "" && !token(c.Subprotocol):
		return fmt.Errorf("%w: subprotocol %q is not an HTTP token (RFC 6455 §4.1)", ErrConfig, c.Subprotocol)
	case c.SampleRate != 0 && !wsaudio.ValidRate(c.SampleRate):
		return fmt.Errorf("%w: sample rate %d: want 8000 or 16000", ErrConfig, c.SampleRate)
	case c.ReadLimit < 0:
		return fmt.Errorf("%w: read limit %d is negative", ErrConfig, c.ReadLimit)
	case c.ReadLimit > 0 && c.ReadLimit < 4096:
		return fmt.Errorf("%w: read limit %d is below 4096 bytes; the metadata would not fit", ErrConfig, c.ReadLimit)
	case c.ReadLimit > 16<<20:
		return fmt.Errorf("%w: read limit %d is above 16 MiB", ErrConfig, c.ReadLimit)
	case c.StartTimeout < 0:
		return fmt.Errorf("%w: start timeout %s is negative", ErrConfig, c.StartTimeout)
	case c.DTMF == media.DTMFEvents:
		return fmt.Errorf("%w: dtmf mode events: mod_audio_fork forwards no digit events; use auto or inband", ErrConfig)
	case c.DTMF > media.DTMFInband:
		return fmt.Errorf("%w: unknown dtmf mode %d", ErrConfig, c.DTMF)
	case c.DTMF == media.DTMFInband && c.NewDetector == nil:
		return fmt.Errorf("%w: dtmf mode inband needs NewDetector", ErrConfig)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Subprotocol == "" {
		c.Subprotocol = DefaultSubprotocol
	}
	if c.SampleRate == 0 {
		c.SampleRate = media.SampleRate
	}
	if c.ReadLimit == 0 {
		c.ReadLimit = DefaultReadLimit
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	return c
}

// token reports whether s is an RFC 7230 token.
func token(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}
