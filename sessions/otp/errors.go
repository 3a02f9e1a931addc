package otp

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	// ErrNoCode is returned by Check when the subject has no live code: none was sent, the
	// record lapsed, or the code was already used.
	ErrNoCode = errors.New("otp: no passcode pending")
	// ErrExpired is returned by Check for a code older than Config.TTL.
	ErrExpired = errors.New("otp: passcode expired")
	// ErrExhausted is returned by Check once a code took Config.MaxChecks wrong entries; the
	// code is dead. Send refusals for the same reason match it too (see RateLimitError).
	ErrExhausted = errors.New("otp: passcode checks exhausted")
	// ErrRateLimited is matched by every *RateLimitError: the send was refused (resend gap,
	// per-subject cap, exhausted failures, or the global send rate).
	ErrRateLimited = errors.New("otp: send rate limited")
	// ErrDelivery wraps every failure of a sender to hand a message over. The message never
	// contains the code.
	ErrDelivery = errors.New("otp: delivery failed")
	// ErrUnavailable is returned (possibly wrapped) when a Store cannot be read or written.
	// Callers fail closed on it.
	ErrUnavailable = errors.New("otp: store unavailable")
	// ErrFull is returned when the in-memory store reached its size cap and nothing expired
	// could be dropped. Errors carrying it also match ErrUnavailable.
	ErrFull = errors.New("otp: store full")
	// ErrBadSubject is returned for an empty subject.
	ErrBadSubject = errors.New("otp: empty subject")
	// ErrInvalidConfig wraps every problem a Validate method finds.
	ErrInvalidConfig = errors.New("otp: invalid configuration")
	// ErrSignature wraps every reason VerifyWebhookSignature rejects a request.
	ErrSignature = errors.New("otp: invalid webhook signature")
)

// Reasons a send is refused, in RateLimitError.Reason.
const (
	ReasonResendGap = "resend_gap" // less than Config.ResendAfter since the last code
	ReasonSendCap   = "send_cap"   // Config.MaxSendsPerSubject reached in the window
	ReasonExhausted = "exhausted"  // the failure count reached Config.MaxChecks
	ReasonGlobal    = "global"     // the process-wide send rate
)

// RateLimitError is returned by Send when a code may not be sent now. It matches
// ErrRateLimited, and ErrExhausted too when Reason is ReasonExhausted.
type RateLimitError struct {
	// Reason is one of the Reason* constants.
	Reason string
	// RetryAfter is how long until a send can succeed (at least one second, rounded up).
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("otp: send rate limited (%s), retry after %v", e.Reason, e.RetryAfter)
}

// Is matches ErrRateLimited, and ErrExhausted for ReasonExhausted.
func (e *RateLimitError) Is(target error) bool {
	return target == ErrRateLimited || (target == ErrExhausted && e.Reason == ReasonExhausted)
}

func rateLimited(reason string, d time.Duration) *RateLimitError {
	if d < time.Second {
		d = time.Second
	}
	return &RateLimitError{Reason: reason, RetryAfter: d.Round(time.Second)}
}

// fullError matches both ErrFull and ErrUnavailable.
type fullError struct{}

func (fullError) Error() string { return ErrFull.Error() }

func (fullError) Is(target error) bool { return target == ErrFull || target == ErrUnavailable }

// scrub returns err unless its text contains code; then it returns an ErrDelivery error that
// says so and drops the chain, so that no caller can reach the code through errors.Unwrap.
// A sender of this package never puts the code in an error; this guards the ones written
// elsewhere and receivers that echo what they were sent.
func scrub(err error, code Passcode) error {
	if err == nil || code == "" || !strings.Contains(err.Error(), code.Reveal()) {
		return err
	}
	return fmt.Errorf("%w: sender error withheld because it contained the passcode", ErrDelivery)
}
