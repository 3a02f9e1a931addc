package vonage

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsaudio"
)

// Messages we send (telephony-protocols §3).
var (
	clearMsg = []byte(`{"action":"clear"}`)
)

// protocol parses Vonage's text messages.
type protocol struct{}

// callIDKeys are the headers a call id is taken from, in order.
var callIDKeys = []string{"uuid", "call_uuid", "conversation_uuid"}

// reserved members of websocket:connected that are not stream parameters.
func reserved(k string) bool {
	switch k {
	case "event", "content-type", "from", "to", "verstat", "uuid", "call_uuid", "conversation_uuid":
		return true
	}
	return false
}

// Start parses websocket:connected.
func (protocol) Start(msg []byte) (wsaudio.Begin, error) {
	obj, err := wsaudio.Object(msg)
	if err != nil {
		return wsaudio.Begin{}, err
	}
	ev, _, err := wsaudio.Str(obj, "event")
	if err != nil {
		return wsaudio.Begin{}, err
	}
	if ev != "websocket:connected" {
		return wsaudio.Begin{}, wsaudio.Violate(wsaudio.ClosePolicy, "first message must be websocket:connected, not %s", wsaudio.Quote(ev))
	}
	ct, ok, err := wsaudio.Str(obj, "content-type")
	if err != nil {
		return wsaudio.Begin{}, err
	}
	if !ok {
		return wsaudio.Begin{}, wsaudio.Violate(wsaudio.CloseInvalid, "websocket:connected has no content-type")
	}
	rate, err := parseContentType(ct)
	if err != nil {
		return wsaudio.Begin{}, err
	}
	st := &media.Start{Params: map[string]string{}}
	for _, f := range []struct {
		dst *string
		key string
	}{{&st.From, "from"}, {&st.To, "to"}, {&st.Verstat, "verstat"}} {
		if *f.dst, _, err = wsaudio.Str(obj, f.key); err != nil {
			return wsaudio.Begin{}, err
		}
	}
	id, ok, err := wsaudio.FirstStr(obj, callIDKeys...)
	switch {
	case err != nil:
		return wsaudio.Begin{}, err
	case !ok || id == "":
		id = wsaudio.NewID("vonage-")
	case !wsaudio.ValidID(id):
		return wsaudio.Begin{}, wsaudio.Violate(wsaudio.CloseInvalid, "call uuid is not 1 to %d letters, digits or ._:-+@", wsaudio.MaxID)
	}
	st.CallID = id
	if err := wsaudio.Params(st.Params, obj, func(k string) bool { return !reserved(k) }); err != nil {
		return wsaudio.Begin{}, err
	}
	return wsaudio.Begin{Start: st, Rate: rate}, nil
}

// parseContentType reads audio/l16;rate=8000 (or 16000), case-insensitively, spaces allowed.
func parseContentType(ct string) (int, error) {
	parts := strings.Split(ct, ";")
	if !strings.EqualFold(strings.TrimSpace(parts[0]), "audio/l16") {
		return 0, wsaudio.Violate(wsaudio.ClosePolicy, "unsupported content-type %s: want audio/l16;rate=8000 or 16000", wsaudio.Quote(ct))
	}
	rate := 0
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "rate") {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return 0, wsaudio.Violate(wsaudio.CloseInvalid, "content-type rate is not a number")
			}
			rate = n
		}
	}
	if !wsaudio.ValidRate(rate) {
		return 0, wsaudio.Violate(wsaudio.ClosePolicy, "unsupported sample rate %d: want audio/l16;rate=8000 or 16000", rate)
	}
	return rate, nil
}

// Control parses the text messages after websocket:connected.
func (protocol) Control(msg []byte) (wsaudio.Control, error) {
	obj, err := wsaudio.Object(msg)
	if err != nil {
		return wsaudio.Control{}, err
	}
	ev, ok, err := wsaudio.Str(obj, "event")
	if err != nil {
		return wsaudio.Control{}, err
	}
	if !ok {
		return wsaudio.Control{}, wsaudio.Violate(wsaudio.CloseInvalid, "message has no event")
	}
	switch ev {
	case "websocket:dtmf":
		return parseDTMF(obj)
	case "websocket:notify":
		return parseNotify(obj)
	case "websocket:cleared":
		return wsaudio.Control{}, nil
	case "websocket:connected":
		return wsaudio.Control{}, wsaudio.Violate(wsaudio.ClosePolicy, "second websocket:connected")
	}
	return wsaudio.Control{}, wsaudio.Violate(wsaudio.ClosePolicy, "unknown event %s", wsaudio.Quote(ev))
}

// parseDTMF reads {"event":"websocket:dtmf","digit":"5","duration":260}; some integrations
// report {"dtmf":{"digit":"5"}}, accepted too.
func parseDTMF(obj map[string]json.RawMessage) (wsaudio.Control, error) {
	d, ok, err := wsaudio.Str(obj, "digit")
	if err != nil {
		return wsaudio.Control{}, err
	}
	if !ok {
		if raw, has := obj["dtmf"]; has {
			inner, err := wsaudio.Object(raw)
			if err != nil {
				return wsaudio.Control{}, wsaudio.Violate(wsaudio.CloseInvalid, "websocket:dtmf dtmf is not an object")
			}
			if d, ok, err = wsaudio.Str(inner, "digit"); err != nil {
				return wsaudio.Control{}, err
			}
		}
	}
	digit, valid := wsaudio.Digit(d)
	if !ok || !valid {
		return wsaudio.Control{}, wsaudio.Violate(wsaudio.CloseInvalid, "websocket:dtmf digit is not one of 0-9, *, #, A-D")
	}
	return wsaudio.Control{Kind: wsaudio.ControlDigit, Digit: digit}, nil
}

// notifyPayload is what we put in a notify and Vonage echoes.
type notifyPayload struct {
	Mark string `json:"mark"`
	Seq  uint64 `json:"seq"`
}

func parseNotify(obj map[string]json.RawMessage) (wsaudio.Control, error) {
	raw, ok := obj["payload"]
	if !ok {
		return wsaudio.Control{}, wsaudio.Violate(wsaudio.CloseInvalid, "websocket:notify has no payload")
	}
	var p notifyPayload
	if err := json.Unmarshal(raw, &p); err != nil || p.Seq == 0 {
		return wsaudio.Control{}, wsaudio.Violate(wsaudio.CloseInvalid, "websocket:notify payload is not one we sent")
	}
	return wsaudio.Control{Kind: wsaudio.ControlAck, Ack: p.Seq}, nil
}

// appendNotify appends the notify sent after a prompt.
func appendNotify(dst []byte, id uint64, name string) []byte {
	dst = append(dst, `{"action":"notify","payload":{"mark":`...)
	dst = wsaudio.AppendString(dst, name)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, id, 10)
	return append(dst, "}}"...)
}

// wire returns a clip as Vonage wants it: binary messages of exactly one 20 ms frame.
func wire(clip *media.Clip, rate int) *wsaudio.Wire { return wsaudio.BinaryWire(clip, rate, 1) }
