package kba

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// LockoutRule says when a subject (an account, a caller number) is locked after failed
// verification sessions: MaxFailures failed sessions within Window lock it for Duration.
// Counters are kept per target record as well as per caller number, and issuing a new passcode
// does not reset them (reference/verification.md §2.1, §5.3). Storage is the sessions package's.
type LockoutRule struct {
	// MaxFailures is the number of failed sessions that locks the subject. Default 3.
	MaxFailures int
	// Window is how far back failures count. Default 24 h.
	Window time.Duration
	// Duration is how long the first lock lasts. Default 30 min.
	Duration time.Duration
	// MaxDuration caps the back-off: each lock within BackoffWindow of the last one lasts
	// twice as long as the one before, up to MaxDuration. Default 24 h; equal to Duration
	// turns the back-off off.
	MaxDuration time.Duration
	// BackoffWindow is how long earlier locks count towards the back-off. Default 7 days.
	BackoffWindow time.Duration
}

// LockFor returns how long a lock lasts when the subject has been locked priorLocks times
// within BackoffWindow: Duration doubled for each, capped at MaxDuration.
func (r LockoutRule) LockFor(priorLocks int) time.Duration {
	d := r.Duration
	max := r.MaxDuration
	if max < d {
		max = d
	}
	for i := 0; i < priorLocks && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

// DefaultLockout is 3 failed sessions within 24 hours lock for 30 minutes: within NIST rev 3's
// "never more than 3 attempts" for KBA and far under SP 800-63B's 100 consecutive failures, and
// short enough that a lock is not a lasting denial of service to the real customer.
func DefaultLockout() LockoutRule {
	return LockoutRule{MaxFailures: 3, Window: 24 * time.Hour, Duration: 30 * time.Minute,
		MaxDuration: 24 * time.Hour, BackoffWindow: 7 * 24 * time.Hour}
}

// Validate rejects a rule that could never lock (or locks forever).
func (r LockoutRule) Validate() error {
	switch {
	case r.MaxFailures < 1 || r.MaxFailures > 100:
		return fmt.Errorf("%w: max failures %d: want 1 to 100 (NIST SP 800-63B §3.2.2)", ErrInvalidLockout, r.MaxFailures)
	case r.Window <= 0:
		return fmt.Errorf("%w: window must be positive", ErrInvalidLockout)
	case r.Duration <= 0:
		return fmt.Errorf("%w: duration must be positive", ErrInvalidLockout)
	}
	return nil
}

// Subject kinds for SubjectKey.
const (
	SubjectAccount = "account" // an account number as keyed
	SubjectCaller  = "caller"  // a caller number (ANI), E.164
)

// SubjectKey returns the store key for a subject: the lower-case hex HMAC-SHA256 under serverKey
// of kind + ":" + value. Stores (memory, Redis) only ever see this, never the account number or
// phone number itself. kind must not contain ':' (use SubjectAccount or SubjectCaller).
func SubjectKey(serverKey []byte, kind, value string) string {
	m := hmac.New(sha256.New, serverKey)
	m.Write([]byte(kind))
	m.Write([]byte{':'})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil))
}
