package webhook

import "errors"

var (
	// ErrInvalidConfig wraps every problem Config.Validate or an option finds. Messages never
	// contain the secret, and name a URL only by its host.
	ErrInvalidConfig = errors.New("webhook: invalid configuration")
	// ErrInvalidEvent wraps every reason Send refuses an event. Messages never contain the token.
	ErrInvalidEvent = errors.New("webhook: invalid event")
	// ErrUnavailable is returned (wrapped) when a queue cannot be read or written. Send then
	// did not queue the event.
	ErrUnavailable = errors.New("webhook: queue unavailable")
	// ErrNotFound is returned by Ack, Retry, DeadLetter and Requeue for an id the queue does
	// not hold (in the state the call needs).
	ErrNotFound = errors.New("webhook: no such delivery")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("webhook: closed")
	// ErrStarted is returned by a second Start.
	ErrStarted = errors.New("webhook: dispatcher already started")
	// ErrSignature wraps every reason VerifySignature rejects a request.
	ErrSignature = errors.New("webhook: invalid signature")
)
