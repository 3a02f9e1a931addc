package telnyx

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsjson"
)

// Messages we send (telephony-protocols §2: no stream_id needed). A media message is
// mediaPrefix followed by one of a clip's wsjson.Chunks.
var wire = wsjson.Wire{
	MediaPrefix: []byte(`{"event":"media"`),
	MarkPrefix:  []byte(`{"event":"mark","mark":{"name":`),
	Clear:       []byte(`{"event":"clear"}`),
}

// maxLoggedErrors bounds the Warn lines for Telnyx error frames per call; the rest are only
// counted.
const maxLoggedErrors = 3

// Leg is one Telnyx media stream as a media.Leg. Handler creates it and hands it to the serve
// function; its methods are safe for concurrent use.
type Leg struct {
	s *wsjson.Stream

	// Reader goroutine only.
	p         wsjson.Parser
	msg       wsjson.Message
	frame     wsjson.MediaFrame
	connected bool
	started   bool
	codec     wsjson.Codec
	sid       []byte // stream_id of start, to compare with each message's ("" when absent)
	payload   []byte // decoded payload
	jit       jitter

	errors atomic.Uint64 // error frames from Telnyx
}

var _ media.Leg = (*Leg)(nil)

// Stats are a leg's counters, for the end-of-call log line and metrics. They never include
// what the caller keyed. Gaps counts holes in the chunk sequence the jitter buffer gave up
// waiting for (a run of missing chunks counts once); they are not filled with silence, as the
// in-band DTMF detector, the only consumer of inbound audio, would hear a tone split in two.
type Stats struct {
	wsjson.StreamStats
	// Reordered counts frames that arrived after a higher chunk and were put back in place;
	// Late counts frames dropped because their place had been played or they were repeats.
	Reordered, Late uint64
	// Errors counts error frames from Telnyx (it rejected something we sent).
	Errors uint64
}

func newLeg(conn *websocket.Conn, cfg *Config, cancel context.CancelFunc) *Leg {
	l := &Leg{
		p:       wsjson.Parser{Keys: wsjson.Keys{Seq: "sequence_number", StreamID: "stream_id", Extra: "payload"}},
		payload: make([]byte, 0, 512),
	}
	l.s = wsjson.New(conn, wsjson.Config{
		Name:        "telnyx",
		ReadLimit:   cfg.ReadLimit,
		DTMF:        cfg.DTMF,
		NewDetector: cfg.NewDetector,
		Handle:      l.handle,
		Cancel:      cancel,
	})
	l.jit.sink = l.s.Receiver()
	l.jit.gaps = &l.s.Counters().Gaps
	return l
}

// Events implements media.Leg.
func (l *Leg) Events() <-chan media.Event { return l.s.Events() }

// Info implements media.Leg.
func (l *Leg) Info() media.Info { return media.Info{Transport: "telnyx", NativeMarks: true} }

// Start returns the stream's metadata (nil before "start" arrived).
func (l *Leg) Start() *media.Start { return l.s.Start() }

// Stats returns the leg's counters.
func (l *Leg) Stats() Stats {
	return Stats{StreamStats: l.s.Stats(), Reordered: l.jit.reordered.Load(), Late: l.jit.late.Load(), Errors: l.errors.Load()}
}

// Play implements media.Leg: the clip goes to Telnyx in the stream's codec as media messages
// of at most one second each (RTP mode takes 20 ms to 30 s per message), then a mark named
// mark, which Telnyx echoes once the audio before it has played. It returns ErrInvalidPlay for
// a nil clip or a bad mark name, media.ErrLegClosed after the leg ended and
// media.ErrBackpressure when the queue is full.
func (l *Leg) Play(clip *media.Clip, mark string) error {
	if clip == nil || !wsjson.ValidMark(mark) {
		return fmt.Errorf("%w: want a clip and a mark name of 1 to %d bytes of UTF-8", ErrInvalidPlay, wsjson.MaxMarkName)
	}
	return l.s.Play(clip, mark)
}

// Clear implements media.Leg: queued prompts not yet sent are dropped, Telnyx is sent
// "clear" (it stops playback and returns the queued marks), and every mark still pending
// comes back with Played false.
func (l *Leg) Clear() error { return l.s.Clear() }

// Hangup implements media.Leg by ending the media stream: the socket closes with 1000 and
// reason. Closing the socket does not hang up a Telnyx call (telephony-protocols §2, §8
// pitfall 12): Telnyx sends the Call Control application a streaming.stopped webhook and the
// call stays up, so that application decides what follows — transfer or bridge the caller to
// an agent, or end the call with POST /v2/calls/{call_control_id}/actions/hangup (a 422 with
// code 90018 means the call had already ended). With TeXML's <Connect><Stream>, the verbs
// after </Connect> should run, as in TwiML; this is not documented, so check it on a test call.
// The leg's last event is a Hangup with media.ErrLegClosed. Later calls do nothing.
func (l *Leg) Hangup(reason string) error { return l.s.Hangup(reason) }

// Close hangs up (reason "closed") and waits for the leg's goroutines. It is idempotent.
func (l *Leg) Close() error { return l.s.Close() }

// handle processes one text message. It allocates nothing for media, dtmf and mark messages
// once the leg's buffers have grown to the frame size. Errors are *wsjson.Violation.
func (l *Leg) handle(data []byte) error {
	m := &l.msg
	if err := l.p.Parse(data, m); err != nil {
		return err
	}
	if !m.HasEvent {
		return wsjson.Violationf(wsjson.CloseInvalid, "message has no event")
	}
	// Frames may arrive in any order, so sequence_number is checked for form only.
	if m.HasSeq {
		if _, ok := wsjson.ParseCounter(m.Seq); !ok {
			return wsjson.Violationf(wsjson.CloseInvalid, "sequence_number is not a decimal counter")
		}
	}
	if l.started && m.HasStreamID && len(l.sid) > 0 && !bytes.Equal(m.StreamID, l.sid) {
		return wsjson.Violationf(wsjson.ClosePolicy, "stream_id differs from the one in start")
	}
	switch string(m.Event) {
	case "connected":
		switch {
		case l.started:
			return wsjson.Violationf(wsjson.ClosePolicy, "connected after start")
		case l.connected:
			return wsjson.Violationf(wsjson.ClosePolicy, "second connected message")
		}
		l.connected = true
		return nil
	case "start":
		return l.onStart(m)
	case "error":
		return l.onError(m.Extra)
	case "stop":
		l.jit.flush() // what was held for re-ordering is audio the caller said
		l.s.End(websocket.CloseNormalClosure, "stream stopped", media.ErrHangup, true)
		return nil
	case "media", "dtmf", "mark":
		if !l.started {
			return wsjson.Violationf(wsjson.ClosePolicy, "%s before start", m.Event)
		}
	default:
		return wsjson.Violationf(wsjson.ClosePolicy, "unknown event %s", wsjson.QuoteName(m.Event))
	}
	switch string(m.Event) {
	case "media":
		return l.onMedia(m.Media)
	case "dtmf":
		return l.s.ReadDTMF(&l.p, m.DTMF)
	default:
		return l.s.ReadMark(&l.p, m.Mark)
	}
}

func (l *Leg) onMedia(raw []byte) error {
	fr := &l.frame
	inbound, err := l.s.ReadMedia(&l.p, raw, false, &l.payload, fr)
	if err != nil || !inbound { // both_tracks also carries what the caller hears
		return err
	}
	if len(fr.Audio)%l.codec.SampleBytes() != 0 {
		return wsjson.Violationf(wsjson.CloseInvalid, "media.payload is not whole %s samples", l.codec)
	}
	l.jit.push(fr.Chunk, l.codec, fr.Audio)
	return nil
}

// onError handles an error frame: Telnyx rejected something we sent (100002 unknown_error,
// 100003 malformed_frame, 100004 invalid_media, 100005 rate_limit_reached). The stream goes
// on; the first few are logged with their code and title, all are counted.
func (l *Leg) onError(raw []byte) error {
	n := l.errors.Add(1)
	var code int64
	var title []byte
	if raw != nil {
		err := l.p.Fields(raw, func(k []byte, s *wsjson.Scanner) error {
			switch string(k) {
			case "code":
				v, err := s.Raw()
				if err != nil {
					return err
				}
				code, _ = parseInt(v)
				return nil
			case "title":
				if s.Peek() == '"' {
					var err error
					title, err = s.Str()
					return err
				}
			}
			return s.Skip(1)
		})
		if err != nil {
			return err
		}
	}
	if n <= maxLoggedErrors {
		l.s.Logger().Warn("telnyx reported a stream error", zap.Int64("code", code),
			zap.String("title", safeTitle(title)), zap.Uint64("errors", n))
	}
	return nil
}

func parseInt(b []byte) (int64, bool) {
	if u, ok := wsjson.ParseCounter(b); ok {
		return int64(u), true
	}
	return 0, false
}

// safeTitle returns an error title for the log when it is a short snake_case word, as
// Telnyx's are; anything else is not echoed.
func safeTitle(b []byte) string {
	if len(b) == 0 || len(b) > 40 {
		return ""
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c == '_' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return string(b)
}

// startFields is a "start" message's body. It is parsed once per call and may allocate.
type startFields struct {
	callControlID, from, to, clientState string
	params                               map[string]string
	format                               wsjson.Format
}

func (l *Leg) onStart(m *wsjson.Message) error {
	if l.started {
		return wsjson.Violationf(wsjson.ClosePolicy, "second start")
	}
	if m.Start == nil {
		return wsjson.Violationf(wsjson.CloseInvalid, "start message has no start object")
	}
	var f startFields
	err := l.p.Fields(m.Start, func(k []byte, s *wsjson.Scanner) error {
		switch string(k) {
		case "call_control_id", "from", "to", "client_state":
			if s.Peek() == 'n' { // null: absent
				return s.Skip(1)
			}
			v, err := wsjson.StringValue(s, "start", k)
			if err != nil {
				return err
			}
			switch string(k) {
			case "call_control_id":
				f.callControlID = string(v)
			case "from":
				f.from = string(v)
			case "to":
				f.to = string(v)
			default:
				f.clientState = string(v)
			}
			return nil
		case "custom_parameters":
			if s.Peek() == 'n' {
				return s.Skip(1)
			}
			var err error
			f.params, err = wsjson.StringMap(s, "start.custom_parameters")
			return err
		case "media_format":
			return wsjson.ReadFormat(s, "start.media_format", "sample_rate", &f.format)
		}
		return s.Skip(1)
	})
	if err != nil {
		return err
	}
	codec, err := codecOf(f.format)
	if err != nil {
		return err
	}
	switch {
	case !wsjson.ValidID(f.callControlID):
		return wsjson.Violationf(wsjson.CloseInvalid, "start.call_control_id is missing or malformed")
	case m.HasStreamID && !wsjson.ValidID(string(m.StreamID)):
		return wsjson.Violationf(wsjson.CloseInvalid, "stream_id is malformed")
	}
	st := &media.Start{
		CallID:    f.callControlID,
		StreamID:  string(m.StreamID),
		Transport: "telnyx",
		From:      f.from,
		To:        f.to,
		Params:    startParams(f.clientState, f.params),
	}
	if st.From == "" {
		st.From = st.Params["from"]
	}
	if st.To == "" {
		st.To = st.Params["to"]
	}
	st.Verstat = verstat(st.Params)
	for _, k := range []string{"from", "to", "verstat", "shaken_stir_attestation", "shaken_stir_validated"} {
		delete(st.Params, k)
	}
	l.sid = []byte(st.StreamID)
	l.codec = codec
	l.started = true
	w := wire
	w.Codec = codec
	l.s.Started(st, w)
	return nil
}

// codecOf maps a start's media_format to the codec the leg decodes and answers in. Telnyx
// offers PCMU, PCMA, G722, OPUS, AMR-WB and L16 (telephony-protocols §2); the leg takes the
// three that need no decoder beyond media's, at 8 kHz mono, and refuses the others with 1008
// and a reason that says what to configure. An absent format means Telnyx's default, PCMU.
func codecOf(f wsjson.Format) (wsjson.Codec, error) {
	var c wsjson.Codec
	switch strings.ToUpper(f.Encoding) {
	case "", "PCMU", "AUDIO/X-MULAW":
		c = wsjson.Ulaw
	case "PCMA", "AUDIO/X-ALAW":
		c = wsjson.Alaw
	case "L16", "AUDIO/L16":
		c = wsjson.L16
	default:
		return 0, wsjson.Violationf(wsjson.ClosePolicy, "unsupported media encoding %s: configure PCMU, PCMA or L16",
			wsjson.QuoteName([]byte(f.Encoding)))
	}
	switch {
	case f.SampleRate != 0 && f.SampleRate != media.SampleRate:
		return 0, wsjson.Violationf(wsjson.ClosePolicy, "unsupported sample rate %d: configure %d Hz", f.SampleRate, media.SampleRate)
	case f.Channels != 0 && f.Channels != 1:
		return 0, wsjson.Violationf(wsjson.ClosePolicy, "unsupported channel count %d", f.Channels)
	}
	return c, nil
}

// maxClientState bounds the client_state the leg tries to read parameters from.
const maxClientState = 4096

// startParams merges the stream parameters: those carried in client_state (base64 of a JSON
// object; string members only), then custom_parameters, which win. A client_state that is not
// such an object belongs to the operator's application and is ignored.
func startParams(clientState string, custom map[string]string) map[string]string {
	params := map[string]string{}
	if clientState != "" && len(clientState) <= maxClientState {
		if raw, err := base64.StdEncoding.DecodeString(clientState); err == nil {
			var obj map[string]any
			if json.Unmarshal(raw, &obj) == nil {
				for k, v := range obj {
					if s, ok := v.(string); ok {
						params[k] = s
					}
				}
			}
		}
	}
	for k, v := range custom {
		params[k] = v
	}
	return params
}

// verstat is the STIR/SHAKEN verification status of the call. The stream itself carries none:
// Telnyx reports SHAKEN on the call.initiated webhook (shaken_stir_attestation "A", "B" or "C"
// and shaken_stir_validated) and on TeXML requests (ShakenStirAttestation,
// ShakenStirValidated), so the application passes them on as stream parameters
// (telephony-protocols §2). A verstat parameter is taken as is; otherwise the pair is mapped
// to the verstat vocabulary Twilio also uses: TN-Validation-Passed-A, TN-Validation-Failed-B,
// ... (no suffix without an attestation level); "" when not given.
func verstat(p map[string]string) string {
	if v := p["verstat"]; v != "" {
		return v
	}
	var status string
	switch strings.ToLower(p["shaken_stir_validated"]) {
	case "true":
		status = "TN-Validation-Passed"
	case "false":
		status = "TN-Validation-Failed"
	default:
		return ""
	}
	switch a := strings.ToUpper(p["shaken_stir_attestation"]); a {
	case "A", "B", "C":
		return status + "-" + a
	}
	return status
}
