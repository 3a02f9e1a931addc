package wsaudio

import (
	"errors"
	"fmt"

	"github.com/gorilla/websocket"
)

// ErrAuth is returned by the authentication helpers when a request carries no credentials or
// the wrong ones. It never says which part was wrong.
var ErrAuth = errors.New("wsaudio: unauthorized")

// Close codes (RFC 6455 §7.4.1) for the violations the adapters detect.
const (
	// CloseUnsupported (1003): a message of a type the protocol does not use there.
	CloseUnsupported = websocket.CloseUnsupportedData
	// CloseInvalid (1007): malformed data.
	CloseInvalid = websocket.CloseInvalidFramePayloadData
	// ClosePolicy (1008): a message not allowed at that point, or not supported.
	ClosePolicy = websocket.ClosePolicyViolation
	// CloseTooBig (1009): a message larger than the read limit.
	CloseTooBig = websocket.CloseMessageTooBig
)

// Violation is a peer's breach of its protocol: the close code and reason the call ends with.
// Reasons never quote caller digits.
type Violation struct {
	Code   int
	Reason string
}

func (v *Violation) Error() string { return v.Reason }

// Violate returns a *Violation with code and a formatted reason.
func Violate(code int, format string, args ...any) *Violation {
	return &Violation{Code: code, Reason: fmt.Sprintf(format, args...)}
}
