package dtmf

import (
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
)

// SIP INFO DTMF bodies. Two content types are used in practice (neither is an IETF standard;
// RFC 6086 only frames INFO packages):
//
//	application/dtmf-relay   "Signal=5\r\nDuration=160\r\n" (Cisco; Duration in ms, optional)
//	application/dtmf         "5" (the digit alone)
//
// Both are parsed leniently: any case, any whitespace, LF or CRLF line ends, unknown lines
// ignored, and the event codes 10-15 accepted for * # A B C D as some gateways send them.

// maxSIPInfoBody bounds the body size accepted.
const maxSIPInfoBody = 1024

// ParseSIPInfo reads a SIP INFO DTMF body. contentType is the request's Content-Type header
// value (parameters allowed). Errors wrap ErrSIPInfo and never contain the digit.
func ParseSIPInfo(contentType string, body []byte) (digit byte, dur time.Duration, err error) {
	mt, _, perr := mime.ParseMediaType(contentType)
	if perr != nil {
		return 0, 0, fmt.Errorf("%w: content type: %v", ErrSIPInfo, perr)
	}
	if len(body) > maxSIPInfoBody {
		return 0, 0, fmt.Errorf("%w: body of %d bytes", ErrSIPInfo, len(body))
	}
	switch mt {
	case "application/dtmf":
		d, ok := parseSignal(strings.TrimSpace(string(body)))
		if !ok {
			return 0, 0, fmt.Errorf("%w: application/dtmf body is not one DTMF digit", ErrSIPInfo)
		}
		return d, 0, nil
	case "application/dtmf-relay":
		return parseRelay(string(body))
	}
	return 0, 0, fmt.Errorf("%w: content type %q is not application/dtmf-relay or application/dtmf", ErrSIPInfo, mt)
}

func parseRelay(body string) (byte, time.Duration, error) {
	var digit byte
	var dur time.Duration
	haveSignal, haveDur := false, false
	for _, line := range strings.FieldsFunc(body, func(r rune) bool { return r == '\n' || r == '\r' }) {
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			if strings.TrimSpace(line) == "" {
				continue
			}
			return 0, 0, fmt.Errorf("%w: dtmf-relay line without '='", ErrSIPInfo)
		}
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		switch key {
		case "signal":
			if haveSignal {
				return 0, 0, fmt.Errorf("%w: dtmf-relay has two Signal lines", ErrSIPInfo)
			}
			d, ok := parseSignal(val)
			if !ok {
				return 0, 0, fmt.Errorf("%w: dtmf-relay Signal is not a DTMF digit", ErrSIPInfo)
			}
			digit, haveSignal = d, true
		case "duration":
			if haveDur {
				return 0, 0, fmt.Errorf("%w: dtmf-relay has two Duration lines", ErrSIPInfo)
			}
			ms, err := strconv.ParseUint(val, 10, 32)
			if err != nil || ms > 3_600_000 {
				return 0, 0, fmt.Errorf("%w: dtmf-relay Duration is not a number of milliseconds", ErrSIPInfo)
			}
			dur, haveDur = time.Duration(ms)*time.Millisecond, true
		}
	}
	if !haveSignal {
		return 0, 0, fmt.Errorf("%w: dtmf-relay without Signal", ErrSIPInfo)
	}
	return digit, dur, nil
}

// parseSignal accepts one of 0-9 * # A-D (any case) or an event code 10-15.
func parseSignal(s string) (byte, bool) {
	switch len(s) {
	case 1:
		if c, ok := EventCode(s[0]); ok {
			return eventDigits[c], true
		}
	case 2:
		if s[0] == '1' && s[1] >= '0' && s[1] <= '5' {
			return eventDigits[10+s[1]-'0'], true
		}
	}
	return 0, false
}
