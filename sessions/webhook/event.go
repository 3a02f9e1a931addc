package webhook

import (
	"encoding/json"
	"fmt"
	"time"
)

// TypeVerificationCompleted is the event type sent when a call's verification ends with a
// token.
const TypeVerificationCompleted = "verification.completed"

const maxTokenLen = 16 << 10

// Event is what a CRM receives. JSON names are the external contract.
type Event struct {
	// Type is "verification.completed" (Send fills it when empty).
	Type string `json:"type"`
	// ID is the token's jti: the idempotency key, the same on every retry. Required.
	ID string `json:"id"`
	// Call is the platform's call id.
	Call string `json:"call"`
	// Outcome is the call's outcome (verified, partially_verified).
	Outcome string `json:"outcome"`
	// Level is the verification level reached (reasonable, reasonably-high).
	Level string `json:"level"`
	// Request is the CCPA request the token covers.
	Request string `json:"request"`
	// AMR lists the RFC 8176 methods used.
	AMR []string `json:"amr"`
	// Token is the signed token; the CRM verifies it against the JWKS. Never logged.
	Token string `json:"token"`
	// At is when the verification completed (Send fills now when zero); UTC in the body.
	At time.Time `json:"at"`
}

// String describes e without the token, for logs and test failures.
func (e Event) String() string {
	return fmt.Sprintf("%s id=%s call=%s outcome=%s level=%s request=%s token=[%d bytes redacted]",
		e.Type, e.ID, e.Call, e.Outcome, e.Level, e.Request, len(e.Token))
}

func (e Event) validate() error {
	bad := func(field, why string) error { return fmt.Errorf("%w: %s %s", ErrInvalidEvent, field, why) }
	switch {
	case e.Type != TypeVerificationCompleted:
		return bad("type", "must be "+TypeVerificationCompleted)
	case e.ID == "" || len(e.ID) > 128 || !isToken(e.ID):
		return bad("id", "must be the token's jti: 1 to 128 of [A-Za-z0-9_-]")
	case e.Call == "" || len(e.Call) > 128:
		return bad("call", "must be 1 to 128 bytes")
	case e.Outcome == "" || len(e.Outcome) > 32:
		return bad("outcome", "must be 1 to 32 bytes")
	case len(e.Level) > 32 || len(e.Request) > 32 || len(e.AMR) > 16:
		return bad("level, request or amr", "too long")
	case len(e.Token) > maxTokenLen:
		return bad("token", "is longer than 16 KiB")
	}
	return nil
}

// Body returns the JSON body posted for e: field order as documented, at in UTC, amr never null.
func (e Event) Body() ([]byte, error) {
	if e.AMR == nil {
		e.AMR = []string{}
	}
	e.At = e.At.UTC()
	return json.Marshal(e)
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
