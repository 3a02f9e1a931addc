package audiosocket

import "errors"

var (
	// ErrConfig wraps every problem Config.Validate and RegistryConfig.Validate find.
	ErrConfig = errors.New("audiosocket: invalid config")
	// ErrIdle is the reason a leg ends when no audio arrived for Config.IdleTimeout.
	ErrIdle = errors.New("audiosocket: no inbound audio")
	// ErrInvalidPlay is returned by Leg.Play for a nil clip or an empty mark name.
	ErrInvalidPlay = errors.New("audiosocket: invalid play request")
	// ErrBadUUID is returned by ParseUUID and by Registry.Register for a malformed UUID.
	ErrBadUUID = errors.New("audiosocket: malformed uuid")
	// ErrRegistryFull is returned by Registry.Register when RegistryConfig.MaxEntries live
	// registrations exist.
	ErrRegistryFull = errors.New("audiosocket: call registry full")
	// ErrClientClosed is returned by Client methods after the connection has closed.
	ErrClientClosed = errors.New("audiosocket: client closed")
)
