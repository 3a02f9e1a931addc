package freeswitch

import "errors"

var (
	// ErrConfig wraps every problem Config.Validate finds.
	ErrConfig = errors.New("freeswitch: invalid config")
	// ErrInvalidPlay is returned by the leg's Play for a nil clip or a bad mark name.
	ErrInvalidPlay = errors.New("freeswitch: invalid play request")
	// ErrRejected is returned by Dial when the server refused the upgrade or the subprotocol.
	ErrRejected = errors.New("freeswitch: stream rejected")
	// ErrClientClosed is returned by Client methods after the stream has closed.
	ErrClientClosed = errors.New("freeswitch: client closed")
	// ErrNoDigitEvents is returned by Client.SendDTMF: mod_audio_fork forwards no digit
	// events; key presses reach the server only as tones in the audio.
	ErrNoDigitEvents = errors.New("freeswitch: mod_audio_fork sends no digit events; send DTMF tones in the audio (in-band)")
)
