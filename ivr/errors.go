package ivr

import "errors"

var (
	// ErrHangup means the caller hung up (or the leg ended) before the flow finished.
	ErrHangup = errors.New("ivr: caller hung up")
	// ErrNoInput means the caller keyed nothing after every re-prompt.
	ErrNoInput = errors.New("ivr: no input")
	// ErrInvalidInput means the caller's entries were malformed after every re-prompt.
	ErrInvalidInput = errors.New("ivr: invalid input")
	// ErrNoStart means the leg never reported its start.
	ErrNoStart = errors.New("ivr: leg did not start")
	// ErrStore means state could not be read or written; the flow fails closed.
	ErrStore = errors.New("ivr: state store unavailable")
	// ErrIssue means the verification token could not be issued or delivered.
	ErrIssue = errors.New("ivr: token not issued")
	// ErrPasscodeRejected means a one-time passcode can no longer be accepted: spent, expired,
	// too many wrong entries, or never sent (rate limits).
	ErrPasscodeRejected = errors.New("ivr: passcode rejected")
	// ErrPrompt means a prompt could not be played.
	ErrPrompt = errors.New("ivr: prompt unavailable")
)
