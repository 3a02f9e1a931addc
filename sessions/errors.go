package sessions

import "errors"

var (
	// ErrUnavailable is returned (possibly wrapped) when a store cannot be read or written.
	// Callers fail closed on it: nobody is verified on unknown state.
	ErrUnavailable = errors.New("sessions: store unavailable")
	// ErrFull is returned when an in-memory store reached its size cap and nothing expired can
	// be dropped. Errors carrying it also match ErrUnavailable, so callers fail closed.
	ErrFull = errors.New("sessions: store full")
	// ErrBadRule is returned by Attempts.Fail for a Rule whose Max, Window or LockFor is not positive.
	ErrBadRule = errors.New("sessions: invalid attempt rule")
	// ErrBadKey is returned for an empty attempts key.
	ErrBadKey = errors.New("sessions: empty key")
	// ErrBadMessage is returned by Append for a message without a type or call id.
	ErrBadMessage = errors.New("sessions: invalid agent message")
	// ErrBadEventID is returned for an event id that is not "<unix ms>-<seq>".
	ErrBadEventID = errors.New("sessions: malformed event id")
	// ErrClosed is returned by an AgentFeed's Next after Close, and by a store after its Close.
	ErrClosed = errors.New("sessions: closed")
)

// fullError matches both ErrFull and ErrUnavailable.
var errFull = fullError{}

type fullError struct{}

func (fullError) Error() string { return ErrFull.Error() }

func (fullError) Is(target error) bool { return target == ErrFull || target == ErrUnavailable }
