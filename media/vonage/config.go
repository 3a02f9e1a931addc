package vonage

import (
	"fmt"
	"time"

	"github.com/callproof/callproof/media"
)

// StreamPath is the WebSocket path Vonage is pointed at; the token may follow it as one more
// segment.
const StreamPath = "/v1/vonage"

// Defaults.
const (
	DefaultReadLimit    = 16 << 10
	DefaultStartTimeout = 10 * time.Second
	DefaultMaxLead      = 5 * time.Second
	// MinTokenLen is the shortest Token Validate accepts.
	MinTokenLen = 16
)

// Config is the deployment data of the Vonage adapter.
type Config struct {
	// Token authenticates Vonage's upgrade request: the URI's last path segment, its token
	// query parameter or an Authorization: Bearer header must equal it. At least 16 characters
	// of A-Z a-z 0-9 - _ . ~ (it goes in a URL). "" turns authentication off (local demos and
	// tests only).
	Token string
	// ReadLimit is the largest inbound message accepted, in bytes. Default 16 KiB; larger
	// messages end the call with 1009.
	ReadLimit int64
	// StartTimeout bounds the wait for websocket:connected after the upgrade. Default 10 s.
	StartTimeout time.Duration
	// MaxLead is how much audio the leg keeps queued at Vonage ahead of playback. Default 5 s;
	// at most 15 s (Vonage's queue holds about 20 s).
	MaxLead time.Duration
	// DTMF chooses which digit sources a leg believes. Default media.DTMFAuto.
	DTMF media.DTMFMode
	// NewDetector makes one in-band DTMF detector per call for audio at the given rate
	// (media.SampleRate); nil means no in-band detection. Required when DTMF is DTMFInband.
	NewDetector func(rate int) media.ToneDetector
}

// Validate reports the first problem with c, wrapped in ErrConfig. Zero values are defaults.
func (c Config) Validate() error {
	switch {
	case c.Token != "" && (len(c.Token) < MinTokenLen || !urlSafe(c.Token)):
		return fmt.Errorf("%w: token must be at least %d characters of A-Z a-z 0-9 - _ . ~", ErrConfig, MinTokenLen)
	case c.ReadLimit < 0:
		return fmt.Errorf("%w: read limit %d is negative", ErrConfig, c.ReadLimit)
	case c.ReadLimit > 0 && c.ReadLimit < 1024:
		return fmt.Errorf("%w: read limit %d is below 1024 bytes; websocket:connected would not fit", ErrConfig, c.ReadLimit)
	case c.ReadLimit > 16<<20:
		return fmt.Errorf("%w: read limit %d is above 16 MiB", ErrConfig, c.ReadLimit)
	case c.StartTimeout < 0:
		return fmt.Errorf("%w: start timeout %s is negative", ErrConfig, c.StartTimeout)
	case c.MaxLead < 0 || c.MaxLead > 15*time.Second:
		return fmt.Errorf("%w: max lead %s: want 0 (default) to 15s", ErrConfig, c.MaxLead)
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

func urlSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}
