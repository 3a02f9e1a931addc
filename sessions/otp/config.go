package otp

import (
	"fmt"
	"time"
)

// Defaults and bounds for Config.
const (
	MinDigits     = 6  // NIST SP 800-63B-4 §3.1.3: at least 6 decimal digits
	MaxDigits     = 10 // Twilio Verify's maximum code length
	DefaultDigits = 6

	MaxTTL     = 10 * time.Minute // NIST SP 800-63B-4 §3.1.3: completed within 10 minutes
	DefaultTTL = 5 * time.Minute

	DefaultMaxChecks = 5 // Twilio Verify: 5 check attempts per verification (error 60202)
	MaxMaxChecks     = 10

	DefaultMaxSendsPerSubject = 3
	MaxMaxSendsPerSubject     = 10
	DefaultSendWindow         = time.Hour
	DefaultResendAfter        = 30 * time.Second

	// MinHMACKey is the shortest HMACKey Validate accepts, in bytes.
	MinHMACKey = 16
)

// Config is the passcode policy. Zero fields take the defaults named on each field; Validate
// checks the result.
type Config struct {
	// Digits is the code length, 6 to 10. Default 6.
	Digits int
	// TTL is how long a code is valid, at most 10 minutes. Default 5 minutes.
	TTL time.Duration
	// MaxChecks is how many wrong entries a code takes before it is dead (ErrExhausted),
	// 1 to 10. The count carries over to a resent code. Default 5.
	MaxChecks int
	// MaxSendsPerSubject caps the codes sent to one subject per SendWindow, 1 to 10. Default 3.
	MaxSendsPerSubject int
	// SendWindow is the window of MaxSendsPerSubject, starting at the first send; at least TTL.
	// The subject's record (and its failure count) lives until the window ends or the last
	// code expires, whichever is later. Default 1 hour.
	SendWindow time.Duration
	// ResendAfter is the minimum gap between two sends to one subject, less than SendWindow.
	// Default 30 seconds.
	ResendAfter time.Duration
	// HMACKey keys the MAC that stores hold instead of the code: HMAC-SHA256(HMACKey,
	// subject || 0x00 || code). At least 16 bytes; required. Use the server key (or a key
	// derived from it) so that every node checks codes any node sent.
	HMACKey []byte
}

func (c Config) withDefaults() Config {
	if c.Digits == 0 {
		c.Digits = DefaultDigits
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.MaxChecks == 0 {
		c.MaxChecks = DefaultMaxChecks
	}
	if c.MaxSendsPerSubject == 0 {
		c.MaxSendsPerSubject = DefaultMaxSendsPerSubject
	}
	if c.SendWindow == 0 {
		c.SendWindow = DefaultSendWindow
	}
	if c.ResendAfter == 0 {
		c.ResendAfter = DefaultResendAfter
	}
	return c
}

// Validate reports a policy that breaks the bounds above, after applying the defaults.
// Messages name the field and the bound, never the key.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Digits < MinDigits || c.Digits > MaxDigits:
		return fmt.Errorf("%w: digits %d: want %d to %d", ErrInvalidConfig, c.Digits, MinDigits, MaxDigits)
	case c.TTL < 0 || c.TTL > MaxTTL:
		return fmt.Errorf("%w: ttl %v: want more than 0 and at most %v", ErrInvalidConfig, c.TTL, MaxTTL)
	case c.MaxChecks < 1 || c.MaxChecks > MaxMaxChecks:
		return fmt.Errorf("%w: max checks %d: want 1 to %d", ErrInvalidConfig, c.MaxChecks, MaxMaxChecks)
	case c.MaxSendsPerSubject < 1 || c.MaxSendsPerSubject > MaxMaxSendsPerSubject:
		return fmt.Errorf("%w: max sends per subject %d: want 1 to %d", ErrInvalidConfig, c.MaxSendsPerSubject, MaxMaxSendsPerSubject)
	case c.SendWindow < c.TTL:
		return fmt.Errorf("%w: send window %v: want at least the ttl (%v)", ErrInvalidConfig, c.SendWindow, c.TTL)
	case c.ResendAfter < 0 || c.ResendAfter >= c.SendWindow:
		return fmt.Errorf("%w: resend after %v: want 0 or more and less than the send window (%v)", ErrInvalidConfig, c.ResendAfter, c.SendWindow)
	case len(c.HMACKey) < MinHMACKey:
		return fmt.Errorf("%w: hmac key is %d bytes: want at least %d", ErrInvalidConfig, len(c.HMACKey), MinHMACKey)
	}
	return nil
}
