package freeswitch

import (
	"encoding/base64"
	"strconv"
	"time"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsaudio"
)

// Messages we send (telephony-protocols §4.2).
var killAudioMsg = []byte(`{"type":"killAudio"}`)

// playRate is the rate prompts are sent at: they are 8 kHz, and FreeSWITCH resamples files.
const playRate = media.SampleRate

// maxPlayFrames bounds one playAudio message: 20 s of 8 kHz L16 is 427 KB of base64, under
// the ~650 KB at which drachtio's module truncates text messages.
const maxPlayFrames = 1000

// Metadata members read into media.Start, in order of preference.
var (
	idKeys   = []string{"uuid", "callId", "call_id", "callid", "callSid"}
	fromKeys = []string{"from", "caller_id_number", "caller"}
	toKeys   = []string{"to", "destination_number", "callee"}
)

func consumed(k string) bool {
	switch k {
	case "uuid", "callId", "call_id", "callid", "callSid", "from", "caller_id_number", "caller",
		"to", "destination_number", "callee", "verstat", "sampleRate", "mixType":
		return true
	}
	return false
}

type protocol struct {
	defaultRate int
}

// Start parses the metadata message.
func (p protocol) Start(msg []byte) (wsaudio.Begin, error) {
	obj, err := wsaudio.Object(msg)
	if err != nil {
		return wsaudio.Begin{}, wsaudio.Violate(wsaudio.CloseInvalid, "metadata must be a JSON object: %s", err)
	}
	st := &media.Start{Params: map[string]string{}}
	id, ok, err := wsaudio.FirstStr(obj, idKeys...)
	switch {
	case err != nil:
		return wsaudio.Begin{}, err
	case !ok || id == "":
		id = wsaudio.NewID("fs-")
	case !wsaudio.ValidID(id):
		return wsaudio.Begin{}, wsaudio.Violate(wsaudio.CloseInvalid, "uuid is not 1 to %d letters, digits or ._:-+@", wsaudio.MaxID)
	}
	st.CallID = id
	if st.From, _, err = wsaudio.FirstStr(obj, fromKeys...); err != nil {
		return wsaudio.Begin{}, err
	}
	if st.To, _, err = wsaudio.FirstStr(obj, toKeys...); err != nil {
		return wsaudio.Begin{}, err
	}
	if st.Verstat, _, err = wsaudio.Str(obj, "verstat"); err != nil {
		return wsaudio.Begin{}, err
	}
	rate := p.defaultRate
	s, ok, err := wsaudio.Str(obj, "sampleRate")
	if err != nil {
		return wsaudio.Begin{}, err
	}
	if ok {
		switch s {
		case "8k":
			rate = 8000
		case "16k":
			rate = 16000
		default:
			if rate, err = strconv.Atoi(s); err != nil {
				return wsaudio.Begin{}, wsaudio.Violate(wsaudio.CloseInvalid, "sampleRate is not 8000, 16000, 8k or 16k")
			}
		}
	}
	if !wsaudio.ValidRate(rate) {
		return wsaudio.Begin{}, wsaudio.Violate(wsaudio.ClosePolicy, "unsupported sampleRate %d: want 8000 or 16000", rate)
	}
	switch mix, _, err := wsaudio.Str(obj, "mixType"); {
	case err != nil:
		return wsaudio.Begin{}, err
	case mix == "stereo":
		return wsaudio.Begin{}, wsaudio.Violate(wsaudio.ClosePolicy, "mixType stereo (two channels) is not supported: fork mono")
	case mix != "" && mix != "mono" && mix != "mixed":
		return wsaudio.Begin{}, wsaudio.Violate(wsaudio.ClosePolicy, "unsupported mixType %s: want mono", wsaudio.Quote(mix))
	}
	if err := wsaudio.Params(st.Params, obj, func(k string) bool { return !consumed(k) }); err != nil {
		return wsaudio.Begin{}, err
	}
	return wsaudio.Begin{Start: st, Rate: rate, PlayRate: playRate}, nil
}

// Control refuses every text message after the metadata: the module sends none of its own.
func (protocol) Control([]byte) (wsaudio.Control, error) {
	return wsaudio.Control{}, wsaudio.Violate(wsaudio.ClosePolicy, "text message after the metadata: mod_audio_fork sends only audio")
}

type playKey struct{}

// wire returns a clip as playAudio messages (cached in the clip): raw L16 at 8 kHz, base64.
func wire(clip *media.Clip, _ int) *wsaudio.Wire {
	return clip.Encoded(playKey{}, func(c *media.Clip) any {
		l16 := wsaudio.L16(c, playRate)
		step := maxPlayFrames * wsaudio.FrameBytes(playRate)
		w := &wsaudio.Wire{}
		for off := 0; off < len(l16); off += step {
			part := l16[off:min(off+step, len(l16))]
			b := []byte(`{"type":"playAudio","data":{"audioContentType":"raw","sampleRate":` + strconv.Itoa(playRate) + `,"audioContent":"`)
			b = base64.StdEncoding.AppendEncode(b, part)
			b = append(b, `"}}`...)
			frames := len(part) / wsaudio.FrameBytes(playRate)
			w.Msgs = append(w.Msgs, wsaudio.Msg{Text: true, Data: b, Dur: time.Duration(frames) * media.FrameDuration})
		}
		return w
	}).(*wsaudio.Wire)
}
