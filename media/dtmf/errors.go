package dtmf

import "errors"

var (
	// ErrConfig is wrapped by Config.Validate and New for an invalid setting.
	ErrConfig = errors.New("dtmf: invalid config")
	// ErrShortPayload is returned for an RFC 4733 payload shorter than one 4-byte report.
	ErrShortPayload = errors.New("dtmf: telephone-event payload too short")
	// ErrPayloadType is returned by Receiver.Handle for a packet whose payload type is not the
	// negotiated telephone-event payload type.
	ErrPayloadType = errors.New("dtmf: not the telephone-event payload type")
	// ErrDigit is returned when asked to send a character that is not a DTMF digit.
	ErrDigit = errors.New("dtmf: not a DTMF digit")
	// ErrSIPInfo wraps every rejection of a SIP INFO body.
	ErrSIPInfo = errors.New("dtmf: bad SIP INFO body")
	// ErrFormat is returned by Scan and ScanFile for audio they cannot read.
	ErrFormat = errors.New("dtmf: unsupported audio format")
)
