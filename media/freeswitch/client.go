package freeswitch

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsaudio"
)

// CallParams describe the call a Client streams, as a uuid_audio_fork call would.
type CallParams struct {
	// CallID is the channel uuid put in the metadata; "" generates one.
	CallID string
	// From, To and Verstat go in the metadata when not "".
	From, To, Verstat string
	// Params are further metadata members (request, lang, account, ...).
	Params map[string]string
	// Rate is the fork's sampling rate, also put in the metadata: 8000 (default) or 16000.
	Rate int
	// Username and Password, when set, are sent as HTTP Basic credentials.
	Username, Password string
	// Subprotocol is offered on the upgrade; default audio.drachtio.org.
	Subprotocol string
}

// Option configures a Client.
type Option = wsaudio.ClientOption

// WithRealtime makes the client play the server's audio in real time: recognised prompts
// (WithPrompts) are reported once played, and killAudio drops what has not played.
func WithRealtime(on bool) Option { return wsaudio.WithRealtime(on) }

// WithPrompts makes the client report each prompt of idx it recognises in a playAudio
// message as SimMark (received) and SimPlayed (played) named after the clip, since
// mod_audio_fork has no marks. Without it, recognise prompts from SimAudio.
func WithPrompts(idx *media.PromptIndex) Option { return wsaudio.WithPrompts(idx) }

// WithEventBuffer sets the capacity of the Events channel (default 256).
func WithEventBuffer(n int) Option { return wsaudio.WithEventBuffer(n) }

// WithDialer sets the WebSocket dialer.
func WithDialer(d *websocket.Dialer) Option { return wsaudio.WithDialer(d) }

// Client plays FreeSWITCH's side of a mod_audio_fork WebSocket: it offers the subprotocol,
// sends the metadata and caller audio as binary L16, and reports playAudio (SimAudio at
// 8 kHz), killAudio (SimClear) and the close (SimClosed). Its methods are safe for
// concurrent use.
type Client struct {
	c *wsaudio.Client
	p CallParams
}

// Dial opens a stream to rawURL (the server's /v1/freeswitch URL) as mod_audio_fork does and
// sends the metadata. It returns an error wrapping ErrRejected when the server refuses.
func Dial(ctx context.Context, rawURL string, p CallParams, opts ...Option) (*Client, error) {
	if p.Rate == 0 {
		p.Rate = media.SampleRate
	}
	if p.CallID == "" {
		p.CallID = wsaudio.NewID("")
	}
	if p.Subprotocol == "" {
		p.Subprotocol = DefaultSubprotocol
	}
	meta := map[string]any{}
	for k, v := range p.Params {
		meta[k] = v
	}
	meta["uuid"] = p.CallID
	meta["sampleRate"] = p.Rate
	meta["mixType"] = "mono"
	for k, v := range map[string]string{"from": p.From, "to": p.To, "verstat": p.Verstat} {
		if v != "" {
			meta[k] = v
		}
	}
	first, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("freeswitch: dial: %w", err)
	}
	hdr := http.Header{}
	if u, err := url.Parse(rawURL); err == nil {
		hdr.Set("Origin", u.Host) // libwebsockets sends the host without a scheme
	}
	if p.Username != "" || p.Password != "" {
		r := &http.Request{Header: hdr}
		r.SetBasicAuth(p.Username, p.Password)
	}
	c, err := wsaudio.Dial(ctx, rawURL, wsaudio.ClientSpec{
		Transport:   "freeswitch",
		Subprotocol: p.Subprotocol,
		Header:      hdr,
		First:       first,
		Rate:        p.Rate,
		Text:        serverText,
		Rejected:    ErrRejected,
		Closed:      ErrClientClosed,
	}, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{c: c, p: p}, nil
}

// serverText handles the messages mod_audio_fork understands and the adapter sends:
// playAudio (raw), killAudio and disconnect.
func serverText(c *wsaudio.Client, msg []byte) error {
	var m struct {
		Type string `json:"type"`
		Data *struct {
			AudioContentType string          `json:"audioContentType"`
			SampleRate       json.RawMessage `json:"sampleRate"`
			AudioContent     string          `json:"audioContent"`
		} `json:"data"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return fmt.Errorf("%w: server sent bad JSON: %v", media.ErrProtocol, err)
	}
	switch m.Type {
	case "playAudio":
		if m.Data == nil || m.Data.AudioContentType != "raw" {
			return fmt.Errorf("%w: playAudio without raw audio data", media.ErrProtocol)
		}
		s := string(m.Data.SampleRate)
		if uq, err := strconv.Unquote(s); err == nil {
			s = uq
		}
		rate, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%w: playAudio sampleRate %q", media.ErrProtocol, m.Data.SampleRate)
		}
		audio, err := base64.StdEncoding.Strict().DecodeString(m.Data.AudioContent)
		if err != nil {
			return fmt.Errorf("%w: playAudio audioContent is not base64", media.ErrProtocol)
		}
		return c.Audio(audio, rate)
	case "killAudio":
		return c.Cleared(nil)
	case "disconnect":
		return nil
	}
	return fmt.Errorf("%w: server sent type %q; mod_audio_fork plays playAudio and killAudio", media.ErrProtocol, m.Type)
}

// Params returns the call's parameters, with generated values filled in.
func (c *Client) Params() CallParams { return c.p }

// SendAudio sends caller audio, given as 8 kHz PCM, as binary L16 at the fork's rate in
// 20 ms messages. It does not pace.
func (c *Client) SendAudio(pcm []int16) error { return c.c.SendAudio(pcm) }

// SendDTMF returns ErrNoDigitEvents: mod_audio_fork forwards no digits. Send the tones in the
// audio instead (media/dtmf generates them).
func (c *Client) SendDTMF(byte) error { return ErrNoDigitEvents }

// Events returns what the client observed; the channel closes after SimClosed.
func (c *Client) Events() <-chan media.SimEvent { return c.c.Events() }

// Err returns the first protocol error the server made, or nil.
func (c *Client) Err() error { return c.c.Err() }

// Close closes the socket with 1000, as FreeSWITCH does when the channel hangs up.
// Idempotent.
func (c *Client) Close() error { return c.c.Close() }
