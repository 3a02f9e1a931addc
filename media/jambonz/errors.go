package jambonz

import "errors"

var (
	// ErrConfig wraps every problem Config.Validate finds.
	ErrConfig = errors.New("jambonz: invalid config")
	// ErrInvalidPlay is returned by the leg's Play for a nil clip or a bad mark name.
	ErrInvalidPlay = errors.New("jambonz: invalid play request")
	// ErrRejected is returned by Dial when the server refused the upgrade or the subprotocol.
	ErrRejected = errors.New("jambonz: stream rejected")
	// ErrClientClosed is returned by Client methods after the stream has closed.
	ErrClientClosed = errors.New("jambonz: client closed")
	// ErrDigit is returned by Client.SendDTMF for a character that is not a DTMF key.
	ErrDigit = errors.New("jambonz: not a DTMF key")
)
