package audiosocket

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/callproof/callproof/media"
)

// DefaultIdleTimeout is how long a call may go without inbound audio before it ends.
const DefaultIdleTimeout = 10 * time.Second

// lookupTimeout bounds Config.Lookup; a call whose lookup has not answered by then starts
// without metadata.
const lookupTimeout = 3 * time.Second

// Config is the deployment data of the AudioSocket server.
type Config struct {
	// DTMF chooses which digit sources a leg believes. Default media.DTMFAuto.
	DTMF media.DTMFMode
	// NewDetector makes one in-band DTMF detector per call; nil means no in-band detection.
	// Required when DTMF is media.DTMFInband. Asterisk builds without the AudioSocket DTMF
	// patch send no 0x03 frames, so in-band detection is the only way to get digits there.
	NewDetector func() media.ToneDetector
	// AllowFrom lists the networks Asterisk may connect from; empty allows any address.
	// AudioSocket has no authentication, so in production this list is its authentication.
	AllowFrom []netip.Prefix
	// IdleTimeout ends a call when no audio frame arrived for this long (Asterisk sends one
	// every 20 ms while the call is up). It also bounds the wait for the first (UUID) frame.
	// Default 10s.
	IdleTimeout time.Duration
	// Lookup returns the metadata of the call with this UUID (canonical lower-case
	// 8-4-4-4-12 form), normally Registry.Lookup. nil, or a miss, starts the call with CallID
	// set to the UUID and no caller metadata. It is called once per call, bounded by a 3 s
	// timeout; it must not keep the returned Start.
	Lookup func(ctx context.Context, uuid string) (*media.Start, bool)
}

// Validate reports the first problem with c, wrapped in ErrConfig. Zero values are defaults.
func (c Config) Validate() error {
	switch {
	case c.DTMF > media.DTMFInband:
		return fmt.Errorf("%w: unknown dtmf mode %d", ErrConfig, c.DTMF)
	case c.DTMF == media.DTMFInband && c.NewDetector == nil:
		return fmt.Errorf("%w: dtmf mode inband needs NewDetector", ErrConfig)
	case c.IdleTimeout < 0:
		return fmt.Errorf("%w: idle timeout %s is negative", ErrConfig, c.IdleTimeout)
	case c.IdleTimeout > 0 && c.IdleTimeout < 100*time.Millisecond:
		return fmt.Errorf("%w: idle timeout %s is below 100ms; Asterisk sends a frame every 20ms but networks jitter", ErrConfig, c.IdleTimeout)
	}
	for i, p := range c.AllowFrom {
		if !p.IsValid() {
			return fmt.Errorf("%w: allow-from entry %d is not a valid prefix", ErrConfig, i)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	return c
}

// allowed reports whether addr may connect under allow (empty allows all).
func allowed(allow []netip.Prefix, addr net.Addr) bool {
	if len(allow) == 0 {
		return true
	}
	var ip netip.Addr
	if t, ok := addr.(*net.TCPAddr); ok {
		ip = t.AddrPort().Addr()
	} else if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		ip = ap.Addr()
	} else {
		return false
	}
	ip = ip.Unmap()
	for _, p := range allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
