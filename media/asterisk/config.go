package asterisk

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/callproof/callproof/media"
)

// Path is the WebSocket path chan_websocket is pointed at (websocket_client.conf uri).
const Path = "/v1/asterisk"

// DefaultStartTimeout bounds the wait for MEDIA_START after the upgrade.
const DefaultStartTimeout = 10 * time.Second

// Config is the deployment data of the chan_websocket adapter.
type Config struct {
	// Username and Password are the HTTP Basic credentials Asterisk must present
	// (websocket_client.conf username/password). Both empty turns authentication off, for
	// private networks behind AllowFrom and for tests.
	Username, Password string
	// AllowFrom lists the networks Asterisk may connect from; empty allows any address.
	// Requests from elsewhere get 403 before any upgrade.
	AllowFrom []netip.Prefix
	// DTMF chooses which digit sources a leg believes. Default media.DTMFAuto.
	DTMF media.DTMFMode
	// NewDetector makes one in-band DTMF detector per call; nil means no in-band detection.
	// Required when DTMF is media.DTMFInband.
	NewDetector func() media.ToneDetector
	// StartTimeout bounds the wait for MEDIA_START after the upgrade. Default 10s; a
	// connection that has not started by then is closed with 1008.
	StartTimeout time.Duration
}

// Validate reports the first problem with c, wrapped in ErrConfig. Zero values are defaults.
func (c Config) Validate() error {
	switch {
	case (c.Username == "") != (c.Password == ""):
		return fmt.Errorf("%w: set both username and password, or neither", ErrConfig)
	case strings.Contains(c.Username, ":"):
		return fmt.Errorf("%w: HTTP Basic usernames cannot contain ':'", ErrConfig)
	case c.DTMF > media.DTMFInband:
		return fmt.Errorf("%w: unknown dtmf mode %d", ErrConfig, c.DTMF)
	case c.DTMF == media.DTMFInband && c.NewDetector == nil:
		return fmt.Errorf("%w: dtmf mode inband needs NewDetector", ErrConfig)
	case c.StartTimeout < 0:
		return fmt.Errorf("%w: start timeout %s is negative", ErrConfig, c.StartTimeout)
	}
	for i, p := range c.AllowFrom {
		if !p.IsValid() {
			return fmt.Errorf("%w: allow-from entry %d is not a valid prefix", ErrConfig, i)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	return c
}
