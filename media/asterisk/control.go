package asterisk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Events Asterisk sends (chan_websocket.c _create_event_*; docs.asterisk.org WebSocket
// channel driver, "Control Commands and Events"). Names are case-sensitive.
const (
	evMediaStart   = "MEDIA_START"
	evDTMFEnd      = "DTMF_END"
	evXOFF         = "MEDIA_XOFF"
	evXON          = "MEDIA_XON"
	evStatus       = "STATUS"
	evBufferingEnd = "MEDIA_BUFFERING_COMPLETED"
	evMarkDone     = "MEDIA_MARK_PROCESSED"
	evQueueDrained = "QUEUE_DRAINED"
	evError        = "ERROR"
)

// Commands we send (and the simulated Asterisk accepts).
const (
	cmdAnswer         = "ANSWER"
	cmdHangup         = "HANGUP"
	cmdStartBuffering = "START_MEDIA_BUFFERING"
	cmdStopBuffering  = "STOP_MEDIA_BUFFERING"
	cmdFlush          = "FLUSH_MEDIA"
	cmdReportDrained  = "REPORT_QUEUE_DRAINED"
	cmdPause          = "PAUSE_MEDIA"
	cmdContinue       = "CONTINUE_MEDIA"
	cmdGetStatus      = "GET_STATUS"
	cmdMarkMedia      = "MARK_MEDIA"
)

// maxCommand is the longest control message Asterisk accepts; longer ones are dropped with
// only a warning in Asterisk's log (chan_websocket.c MAX_TEXT_MESSAGE_LEN).
const maxCommand = 128

// WebSocket close codes (RFC 6455 §7.4.1) used for peer mistakes.
const (
	closeUnsupported = websocket.CloseUnsupportedData         // 1003: a format we cannot take
	closeInvalid     = websocket.CloseInvalidFramePayloadData // 1007: malformed data
	closePolicy      = websocket.ClosePolicyViolation         // 1008: not allowed at this point
	closeTooBig      = websocket.CloseMessageTooBig           // 1009
)

// protoError is a violation of the protocol by the peer, with the close code it earns. Its
// text never carries more of the peer's data than a bounded event or key name.
type protoError struct {
	code int
	msg  string
}

func (e *protoError) Error() string { return e.msg }

func violation(code int, format string, args ...any) *protoError {
	return &protoError{code: code, msg: fmt.Sprintf(format, args...)}
}

// ctlFormat is the control message format of a call: Asterisk's legacy single-line text
// (the default) or JSON (chan_websocket.conf control_message_format=json, or f(json) in the
// dial string; Asterisk 20.18, 22.8, 23.2 and later). It is set by MEDIA_START.
type ctlFormat uint8

const (
	formatPlain ctlFormat = iota + 1
	formatJSON
)

// event is one control message from Asterisk.
type event struct {
	name string
	// MEDIA_START.
	connectionID, channel, channelID, format string
	frameSize, ptime                         int
	passthrough                              bool
	vars                                     map[string]string // JSON only: channel_variables
	// DTMF_END.
	digit byte
	// MEDIA_BUFFERING_COMPLETED, MEDIA_MARK_PROCESSED: the correlation id, "" when absent.
	id string
	// ERROR.
	errText string
}

// parseEvent parses one text message from Asterisk in either format. Errors are *protoError:
// 1007 for malformed messages, 1008 for unknown events.
func parseEvent(msg []byte) (event, ctlFormat, error) {
	if !utf8.Valid(msg) {
		return event{}, 0, violation(closeInvalid, "text message is not UTF-8")
	}
	msg = bytes.TrimSpace(msg)
	if len(msg) == 0 {
		return event{}, 0, violation(closeInvalid, "empty control message")
	}
	if msg[0] == '{' {
		ev, err := parseJSON(msg)
		return ev, formatJSON, err
	}
	ev, err := parsePlain(string(msg))
	return ev, formatPlain, err
}

// validName reports whether s looks like an event name: upper-case letters and '_'.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return true
}

// validKey reports whether s looks like a field name: lower-case letters, digits and '_'.
func validKey(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// parsePlain parses the single-line format: the event name, then space-separated key:value
// fields (MEDIA_START connection_id:… channel:… channel_id:… format:ulaw
// optimal_frame_size:160 ptime:20; DTMF_END digit:5 channel_id:…), except that
// MEDIA_BUFFERING_COMPLETED and MEDIA_MARK_PROCESSED carry a bare optional id and ERROR's
// error_text runs to the end of the line.
func parsePlain(s string) (event, error) {
	name, rest, _ := strings.Cut(s, " ")
	if !validName(name) {
		return event{}, violation(closeInvalid, "malformed control message")
	}
	ev := event{name: name}
	switch name {
	case evBufferingEnd, evMarkDone:
		fields := strings.Fields(rest)
		switch len(fields) {
		case 0:
		case 1:
			ev.id = strings.TrimPrefix(fields[0], "correlation_id:")
		default:
			return event{}, violation(closeInvalid, "%s carries more than one id", name)
		}
		return ev, nil
	case evError:
		if i := strings.Index(rest, "error_text:"); i >= 0 {
			ev.errText = rest[i+len("error_text:"):]
			rest = rest[:i]
		}
	}
	fields, err := plainFields(name, rest)
	if err != nil {
		return event{}, err
	}
	switch name {
	case evMediaStart:
		ev.connectionID, ev.channel, ev.channelID, ev.format =
			fields["connection_id"], fields["channel"], fields["channel_id"], fields["format"]
		if v, ok := fields["optimal_frame_size"]; ok {
			if ev.frameSize, err = smallInt(name, "optimal_frame_size", v); err != nil {
				return event{}, err
			}
		}
		if v, ok := fields["ptime"]; ok {
			if ev.ptime, err = smallInt(name, "ptime", v); err != nil {
				return event{}, err
			}
		}
		switch fields["passthrough"] {
		case "", "false":
		case "true":
			ev.passthrough = true
		default:
			return event{}, violation(closeInvalid, "MEDIA_START passthrough is not true or false")
		}
		return ev, checkStart(&ev)
	case evDTMFEnd:
		ev.channelID = fields["channel_id"]
		return ev, setDigit(&ev, fields["digit"])
	case evXOFF, evXON, evQueueDrained, evStatus, evError:
		return ev, nil
	}
	return event{}, violation(closePolicy, "unknown control message %s", name)
}

// plainFields splits key:value fields. Keys must be lower-case names and appear once; values
// run to the next space and may contain ':'.
func plainFields(name, rest string) (map[string]string, error) {
	fields := map[string]string{}
	for _, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, ":")
		if !ok || !validKey(k) {
			return nil, violation(closeInvalid, "%s has a field that is not key:value", name)
		}
		if _, dup := fields[k]; dup {
			return nil, violation(closeInvalid, "%s repeats field %s", name, k)
		}
		fields[k] = v
	}
	return fields, nil
}

func smallInt(name, key, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		return 0, violation(closeInvalid, "%s %s is not a number from 0 to 65535", name, key)
	}
	return n, nil
}

func setDigit(ev *event, d string) error {
	if len(d) != 1 || strings.IndexByte("0123456789*#ABCD", d[0]) < 0 {
		return violation(closeInvalid, "DTMF_END digit is not one of 0-9, *, #, A-D")
	}
	ev.digit = d[0]
	return nil
}

// checkStart requires the fields every MEDIA_START has.
func checkStart(ev *event) error {
	switch {
	case ev.connectionID == "":
		return violation(closeInvalid, "MEDIA_START has no connection_id")
	case ev.format == "":
		return violation(closeInvalid, "MEDIA_START has no format")
	case len(ev.connectionID) > 128 || len(ev.channel) > 256 || len(ev.channelID) > 128 || len(ev.format) > 32:
		return violation(closeInvalid, "MEDIA_START has an overlong field")
	}
	return nil
}

// jsonEvent is the JSON form of every event (chan_websocket.c, JSON branches).
type jsonEvent struct {
	Event            string                     `json:"event"`
	ConnectionID     string                     `json:"connection_id"`
	Channel          string                     `json:"channel"`
	ChannelID        string                     `json:"channel_id"`
	Format           string                     `json:"format"`
	OptimalFrameSize *int                       `json:"optimal_frame_size"`
	PTime            *int                       `json:"ptime"`
	Passthrough      *bool                      `json:"passthrough"`
	ChannelVariables map[string]json.RawMessage `json:"channel_variables"`
	Digit            string                     `json:"digit"`
	CorrelationID    string                     `json:"correlation_id"`
	ErrorText        string                     `json:"error_text"`
}

// parseJSON parses the JSON format: one object with "event" and the event's fields. Unknown
// fields are ignored (Asterisk adds fields over time); channel variables that are not strings
// are skipped.
func parseJSON(msg []byte) (event, error) {
	var j jsonEvent
	if err := json.Unmarshal(msg, &j); err != nil {
		return event{}, violation(closeInvalid, "control message is not a JSON event object")
	}
	if !validName(j.Event) {
		return event{}, violation(closeInvalid, "JSON control message has no valid event name")
	}
	ev := event{name: j.Event}
	switch j.Event {
	case evMediaStart:
		ev.connectionID, ev.channel, ev.channelID, ev.format = j.ConnectionID, j.Channel, j.ChannelID, j.Format
		for key, p := range map[string]*int{"optimal_frame_size": j.OptimalFrameSize, "ptime": j.PTime} {
			if p == nil {
				continue
			}
			if *p < 0 || *p > 65535 {
				return event{}, violation(closeInvalid, "MEDIA_START %s is not a number from 0 to 65535", key)
			}
		}
		if j.OptimalFrameSize != nil {
			ev.frameSize = *j.OptimalFrameSize
		}
		if j.PTime != nil {
			ev.ptime = *j.PTime
		}
		ev.passthrough = j.Passthrough != nil && *j.Passthrough
		if len(j.ChannelVariables) > 0 {
			ev.vars = make(map[string]string, len(j.ChannelVariables))
			for k, raw := range j.ChannelVariables {
				var v string
				if json.Unmarshal(raw, &v) == nil {
					ev.vars[k] = v
				}
			}
		}
		return ev, checkStart(&ev)
	case evDTMFEnd:
		ev.channelID = j.ChannelID
		return ev, setDigit(&ev, j.Digit)
	case evBufferingEnd, evMarkDone:
		ev.id = j.CorrelationID
		return ev, nil
	case evError:
		ev.errText = j.ErrorText
		return ev, nil
	case evXOFF, evXON, evQueueDrained, evStatus:
		return ev, nil
	}
	return event{}, violation(closePolicy, "unknown control message %s", j.Event)
}

// appendCommand appends one command in format f: "STOP_MEDIA_BUFFERING 7" or
// {"command":"STOP_MEDIA_BUFFERING","correlation_id":"7"}. id is our own decimal counter, so
// it needs no escaping.
func appendCommand(dst []byte, f ctlFormat, cmd, id string) []byte {
	if f == formatJSON {
		dst = append(dst, `{"command":"`...)
		dst = append(dst, cmd...)
		if id != "" {
			dst = append(dst, `","correlation_id":"`...)
			dst = append(dst, id...)
		}
		return append(dst, `"}`...)
	}
	dst = append(dst, cmd...)
	if id != "" {
		dst = append(append(dst, ' '), id...)
	}
	return dst
}

// quoteName bounds a peer-supplied name for an error message or log line.
func quoteName(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return strconv.Quote(s)
}
