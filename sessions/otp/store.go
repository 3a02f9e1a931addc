package otp

import (
	"context"
	"slices"
	"time"
)

// Record is what a Store keeps per subject: the MAC of the live code (never the code), its
// expiry, the failure and send counts, and the masked destination. It holds no secret in
// clear and no unmasked contact, so a Redis implementation may store it as it is.
type Record struct {
	// MAC is HMAC-SHA256(Config.HMACKey, subject || 0x00 || code) of the live code; nil once
	// the code was used.
	MAC []byte `json:"mac,omitempty"`
	// ExpiresAt is when the live code stops being accepted.
	ExpiresAt time.Time `json:"expires_at"`
	// Failures counts wrong entries since the last success. A resent code inherits it; once
	// it reaches Config.MaxChecks the code is dead.
	Failures int `json:"failures"`
	// Sends counts codes issued in the current send window.
	Sends int `json:"sends"`
	// WindowEnds is when the current send window closes (Config.SendWindow after its first send).
	WindowEnds time.Time `json:"window_ends"`
	// LastSent is when the latest code was issued (for Config.ResendAfter).
	LastSent time.Time `json:"last_sent"`
	// MaskedTo is the latest code's destination, masked (Mask).
	MaskedTo string `json:"masked_to,omitempty"`
	// KeepUntil is when the store may forget the record: the later of ExpiresAt and
	// WindowEnds. A Redis implementation uses it as the key's expiry (PEXPIREAT).
	KeepUntil time.Time `json:"keep_until"`
}

// clone returns r with its own copy of MAC.
func (r Record) clone() Record {
	r.MAC = slices.Clone(r.MAC)
	return r
}

// Store keeps one Record per subject. Subjects are already hashed by the caller
// (kba.SubjectKey); an implementation never sees caller input. Implementations: *Memory
// here; a shared one (Redis, under sessions/redis) keeps each record under one key with
// KeepUntil as its expiry.
//
// Errors reaching the store itself are returned wrapped with ErrUnavailable, so that callers
// fail closed.
type Store interface {
	// Load returns the subject's record; found is false when there is none or its KeepUntil
	// has passed.
	Load(ctx context.Context, subject string) (r Record, found bool, err error)
	// Update applies fn atomically with respect to every other Update of the same subject:
	// fn receives the current record (found false, and a zero Record, when there is none or it
	// lapsed) and returns the record to store. A returned record whose KeepUntil is not in the
	// future deletes the subject's record. If fn returns an error nothing is written and
	// Update returns that error unchanged. fn may run more than once (an optimistic
	// implementation such as Redis WATCH/MULTI retries it on conflict), so it must have no
	// effect beyond its return values. Update returns what it stored.
	Update(ctx context.Context, subject string, fn func(cur Record, found bool) (Record, error)) (Record, error)
}
