package jambonz

import (
	"strconv"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsaudio"
)

// Messages we send (telephony-protocols §5).
var (
	killAudioMsg  = []byte(`{"type":"killAudio"}`)
	disconnectMsg = []byte(`{"type":"disconnect"}`)
)

// framesPerMessage is how much audio each binary message carries: 100 ms.
const framesPerMessage = 5

// paramKeys are the stream parameters taken from the metadata.
var paramKeys = map[string]bool{"request": true, "lang": true, "account": true}

// nestedKeys name objects an application may nest its parameters in.
var nestedKeys = []string{"metadata", "customParameters"}

type protocol struct{}

// Start parses the metadata message.
func (protocol) Start(msg []byte) (wsaudio.Begin, error) {
	obj, err := wsaudio.Object(msg)
	if err != nil {
		return wsaudio.Begin{}, err
	}
	id, ok, err := wsaudio.Str(obj, "callSid")
	switch {
	case err != nil:
		return wsaudio.Begin{}, err
	case !ok:
		return wsaudio.Begin{}, wsaudio.Violate(wsaudio.CloseInvalid, "metadata has no callSid")
	case !wsaudio.ValidID(id):
		return wsaudio.Begin{}, wsaudio.Violate(wsaudio.CloseInvalid, "callSid is not 1 to %d letters, digits or ._:-+@", wsaudio.MaxID)
	}
	rate := media.SampleRate // the listen verb's default
	if s, ok, err := wsaudio.Str(obj, "sampleRate"); err != nil {
		return wsaudio.Begin{}, err
	} else if ok {
		if rate, err = strconv.Atoi(s); err != nil {
			return wsaudio.Begin{}, wsaudio.Violate(wsaudio.CloseInvalid, "sampleRate is not a whole number")
		}
	}
	if !wsaudio.ValidRate(rate) {
		return wsaudio.Begin{}, wsaudio.Violate(wsaudio.ClosePolicy, "unsupported sampleRate %d: want 8000 or 16000", rate)
	}
	switch mix, _, err := wsaudio.Str(obj, "mixType"); {
	case err != nil:
		return wsaudio.Begin{}, err
	case mix == "stereo":
		return wsaudio.Begin{}, wsaudio.Violate(wsaudio.ClosePolicy, "mixType stereo (two channels) is not supported: use mono")
	case mix != "" && mix != "mono" && mix != "mixed":
		return wsaudio.Begin{}, wsaudio.Violate(wsaudio.ClosePolicy, "unsupported mixType %s: want mono", wsaudio.Quote(mix))
	}
	st := &media.Start{CallID: id, Params: map[string]string{}}
	for _, f := range []struct {
		dst *string
		key string
	}{{&st.From, "from"}, {&st.To, "to"}, {&st.Verstat, "verstat"}} {
		if *f.dst, _, err = wsaudio.Str(obj, f.key); err != nil {
			return wsaudio.Begin{}, err
		}
	}
	if err := wsaudio.Params(st.Params, obj, func(k string) bool { return paramKeys[k] }); err != nil {
		return wsaudio.Begin{}, err
	}
	for _, k := range nestedKeys {
		raw, ok := obj[k]
		if !ok || string(raw) == "null" {
			continue
		}
		inner, err := wsaudio.Object(raw)
		if err != nil {
			return wsaudio.Begin{}, wsaudio.Violate(wsaudio.CloseInvalid, "%s is not an object", k)
		}
		if err := wsaudio.Params(st.Params, inner, func(k string) bool { return paramKeys[k] || k == "verstat" }); err != nil {
			return wsaudio.Begin{}, err
		}
	}
	if v, ok := st.Params["verstat"]; ok {
		if st.Verstat == "" {
			st.Verstat = v
		}
		delete(st.Params, "verstat")
	}
	return wsaudio.Begin{Start: st, Rate: rate}, nil
}

// Control parses the text messages after the metadata: only digit events (passDtmf).
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
		if typ, has, _ := wsaudio.Str(obj, "type"); has {
			return wsaudio.Control{}, wsaudio.Violate(wsaudio.ClosePolicy, "unexpected message type %s", wsaudio.Quote(typ))
		}
		return wsaudio.Control{}, wsaudio.Violate(wsaudio.CloseInvalid, "message has no event")
	}
	if ev != "dtmf" {
		return wsaudio.Control{}, wsaudio.Violate(wsaudio.ClosePolicy, "unknown event %s", wsaudio.Quote(ev))
	}
	d, _, err := wsaudio.Str(obj, "dtmf")
	if err != nil {
		return wsaudio.Control{}, err
	}
	digit, valid := wsaudio.Digit(d)
	if !valid {
		return wsaudio.Control{}, wsaudio.Violate(wsaudio.CloseInvalid, "dtmf is not one of 0-9, *, #, A-D")
	}
	return wsaudio.Control{Kind: wsaudio.ControlDigit, Digit: digit}, nil
}

// wire returns a clip as binary L16 messages of 100 ms at the stream's rate.
func wire(clip *media.Clip, rate int) *wsaudio.Wire {
	return wsaudio.BinaryWire(clip, rate, framesPerMessage)
}
