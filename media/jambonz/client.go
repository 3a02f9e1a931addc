package jambonz

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsaudio"
)

// CallParams describe the call a Client streams, as a jambonz application would.
type CallParams struct {
	// CallID is the callSid; "" generates one.
	CallID string
	// From, To and Verstat go in the metadata when not "".
	From, To, Verstat string
	// Params are the verb's metadata (request, lang, account, ...), merged in at the top
	// level as jambonz does.
	Params map[string]string
	// Rate is the verb's sampleRate (and bidirectionalAudio.sampleRate): 8000 (default) or
	// 16000.
	Rate int
	// Username and Password, when set, are the verb's wsAuth (HTTP Basic).
	Username, Password string
}

// Option configures a Client.
type Option = wsaudio.ClientOption

// WithRealtime makes the client play the server's audio in real time: recognised prompts
// (WithPrompts) are reported once played, and killAudio drops what has not played.
func WithRealtime(on bool) Option { return wsaudio.WithRealtime(on) }

// WithPrompts makes the client report each prompt of idx it recognises in the server's audio
// as SimMark (received) and SimPlayed (played) named after the clip, since jambonz has no
// marks of its own in streaming mode. Without it, recognise prompts from SimAudio.
func WithPrompts(idx *media.PromptIndex) Option { return wsaudio.WithPrompts(idx) }

// WithEventBuffer sets the capacity of the Events channel (default 256).
func WithEventBuffer(n int) Option { return wsaudio.WithEventBuffer(n) }

// WithDialer sets the WebSocket dialer.
func WithDialer(d *websocket.Dialer) Option { return wsaudio.WithDialer(d) }

// Client plays jambonz's side of a listen WebSocket with bidirectional streaming audio: it
// offers audio.jambonz.org, sends the metadata, caller audio as binary L16 and (as passDtmf
// does) dtmf events, and reports the server's audio (SimAudio, 8 kHz), killAudio (SimClear)
// and the close (SimClosed). Its methods are safe for concurrent use.
type Client struct {
	c *wsaudio.Client
	p CallParams
}

// Dial opens a stream to rawURL (the server's /v1/jambonz URL) as jambonz does and sends the
// metadata. It returns an error wrapping ErrRejected when the server refuses the upgrade.
func Dial(ctx context.Context, rawURL string, p CallParams, opts ...Option) (*Client, error) {
	if p.Rate == 0 {
		p.Rate = media.SampleRate
	}
	if p.CallID == "" {
		p.CallID = wsaudio.NewID("")
	}
	meta := map[string]any{}
	for k, v := range p.Params {
		meta[k] = v
	}
	meta["callSid"] = p.CallID
	meta["callId"] = p.CallID + "@sim"
	meta["direction"] = "inbound"
	meta["sampleRate"] = p.Rate
	meta["mixType"] = "mono"
	for k, v := range map[string]string{"from": p.From, "to": p.To, "verstat": p.Verstat} {
		if v != "" {
			meta[k] = v
		}
	}
	first, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("jambonz: dial: %w", err)
	}
	hdr := http.Header{}
	if u, err := url.Parse(rawURL); err == nil {
		hdr.Set("Origin", u.Host) // as libwebsockets sends it: no scheme
	}
	if p.Username != "" || p.Password != "" {
		r := &http.Request{Header: hdr}
		r.SetBasicAuth(p.Username, p.Password)
	}
	c, err := wsaudio.Dial(ctx, rawURL, wsaudio.ClientSpec{
		Transport:   "jambonz",
		Subprotocol: Subprotocol,
		Header:      hdr,
		First:       first,
		Rate:        p.Rate,
		BinaryRate:  p.Rate,
		Text:        serverText,
		Rejected:    ErrRejected,
		Closed:      ErrClientClosed,
	}, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{c: c, p: p}, nil
}

// serverText handles killAudio and disconnect; playAudio (file mode) is not what the adapter
// uses, and anything else is not jambonz's protocol.
func serverText(c *wsaudio.Client, msg []byte) error {
	var m struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return fmt.Errorf("%w: server sent bad JSON: %v", media.ErrProtocol, err)
	}
	switch m.Type {
	case "killAudio":
		return c.Cleared(nil)
	case "disconnect":
		return nil // the close frame follows
	}
	return fmt.Errorf("%w: server sent type %q; the adapter streams audio and sends only killAudio and disconnect", media.ErrProtocol, m.Type)
}

// Params returns the call's parameters, with generated values filled in.
func (c *Client) Params() CallParams { return c.p }

// SendAudio sends caller audio, given as 8 kHz PCM, as binary L16 at the call's rate in
// 20 ms messages. It does not pace.
func (c *Client) SendAudio(pcm []int16) error { return c.c.SendAudio(pcm) }

// SendDTMF sends {"event":"dtmf","dtmf":"<d>","duration":1600} for one key, as the listen
// verb does with passDtmf.
func (c *Client) SendDTMF(d byte) error {
	if _, ok := wsaudio.Digit(string(d)); !ok {
		return ErrDigit
	}
	return c.c.SendText([]byte(`{"event":"dtmf","dtmf":"` + string(d) + `","duration":1600}`))
}

// Events returns what the client observed; the channel closes after SimClosed.
func (c *Client) Events() <-chan media.SimEvent { return c.c.Events() }

// Err returns the first protocol error the server made, or nil.
func (c *Client) Err() error { return c.c.Err() }

// Close closes the socket with 1000, as jambonz does when the caller hangs up. Idempotent.
func (c *Client) Close() error { return c.c.Close() }
