package vonage

import "errors"

var (
	// ErrConfig wraps every problem Config.Validate finds.
	ErrConfig = errors.New("vonage: invalid config")
	// ErrInvalidPlay is returned by the leg's Play for a nil clip or a bad mark name.
	ErrInvalidPlay = errors.New("vonage: invalid play request")
	// ErrRejected is returned by Dial when the server refused the upgrade.
	ErrRejected = errors.New("vonage: stream rejected")
	// ErrClientClosed is returned by Client methods after the stream has closed.
	ErrClientClosed = errors.New("vonage: client closed")
	// ErrDigit is returned by Client.SendDTMF for a character that is not a DTMF key.
	ErrDigit = errors.New("vonage: not a DTMF key")
)
