package vonage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsaudio"
)

// CallParams describe the call a Client streams, as an NCCO would.
type CallParams struct {
	// CallID goes in the uuid header; "" generates one.
	CallID string
	// From, To and Verstat become headers of those names when not "".
	From, To, Verstat string
	// Params are further headers (request, lang, account, ...).
	Params map[string]string
	// Rate is the content-type's rate: 8000 (default) or 16000.
	Rate int
	// Token, when set, is sent as Authorization: Bearer. To use the path form, dial
	// <server>/v1/vonage/<token> instead.
	Token string
}

// Option configures a Client.
type Option = wsaudio.ClientOption

// WithRealtime makes the client acknowledge each notify only once the audio before it has
// played in real time, as Vonage does; off, it acknowledges at once.
func WithRealtime(on bool) Option { return wsaudio.WithRealtime(on) }

// WithEventBuffer sets the capacity of the Events channel (default 256).
func WithEventBuffer(n int) Option { return wsaudio.WithEventBuffer(n) }

// WithDialer sets the WebSocket dialer.
func WithDialer(d *websocket.Dialer) Option { return wsaudio.WithDialer(d) }

// Client plays Vonage's side of a WebSocket: it sends websocket:connected with the call's
// headers, caller audio as 20 ms L16 frames and websocket:dtmf. A notify is reported as
// SimMark with the mark's name when it arrives, then as SimPlayed when the client echoes it
// as websocket:notify (at once, or after playback with WithRealtime); a clear is reported as
// SimClear and answered with websocket:cleared. Its methods are safe for concurrent use.
type Client struct {
	c *wsaudio.Client
	p CallParams
}

// Dial opens a stream to rawURL (the server's /v1/vonage URL, ws:// or http://) and sends
// websocket:connected. It returns an error wrapping ErrRejected when the server refuses.
func Dial(ctx context.Context, rawURL string, p CallParams, opts ...Option) (*Client, error) {
	if p.Rate == 0 {
		p.Rate = media.SampleRate
	}
	if p.CallID == "" {
		p.CallID = wsaudio.NewID("vonage-")
	}
	first := map[string]string{}
	for k, v := range p.Params {
		first[k] = v
	}
	for k, v := range map[string]string{"from": p.From, "to": p.To, "verstat": p.Verstat} {
		if v != "" {
			first[k] = v
		}
	}
	first["uuid"] = p.CallID
	first["event"] = "websocket:connected"
	first["content-type"] = "audio/l16;rate=" + strconv.Itoa(p.Rate)
	msg, err := json.Marshal(first)
	if err != nil {
		return nil, fmt.Errorf("vonage: dial: %w", err)
	}
	hdr := http.Header{}
	if p.Token != "" {
		hdr.Set("Authorization", "Bearer "+p.Token)
	}
	c, err := wsaudio.Dial(ctx, rawURL, wsaudio.ClientSpec{
		Transport:   "vonage",
		Header:      hdr,
		First:       msg,
		Rate:        p.Rate,
		BinaryRate:  p.Rate,
		ExactFrames: true,
		Text:        serverText,
		Rejected:    ErrRejected,
		Closed:      ErrClientClosed,
	}, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{c: c, p: p}, nil
}

// serverText handles notify and clear, the only text messages Vonage accepts (§3).
func serverText(c *wsaudio.Client, msg []byte) error {
	var m struct {
		Action  string          `json:"action"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return fmt.Errorf("%w: server sent bad JSON: %v", media.ErrProtocol, err)
	}
	switch m.Action {
	case "notify":
		var p struct {
			Mark string `json:"mark"`
		}
		if len(m.Payload) == 0 || json.Unmarshal(m.Payload, &p) != nil {
			return fmt.Errorf("%w: notify without an object payload", media.ErrProtocol)
		}
		ack, err := json.Marshal(struct {
			Event   string          `json:"event"`
			Payload json.RawMessage `json:"payload"`
		}{"websocket:notify", m.Payload})
		if err != nil {
			return err
		}
		return c.Mark(p.Mark, ack)
	case "clear":
		return c.Cleared([]byte(`{"event":"websocket:cleared"}`))
	}
	return fmt.Errorf("%w: server sent action %q; Vonage accepts notify and clear", media.ErrProtocol, m.Action)
}

// Params returns the call's parameters, with generated values filled in.
func (c *Client) Params() CallParams { return c.p }

// SendAudio sends caller audio, given as 8 kHz PCM, as binary frames of exactly 20 ms at the
// call's rate (resampled to 16 kHz when Rate is 16000). It does not pace.
func (c *Client) SendAudio(pcm []int16) error { return c.c.SendAudio(pcm) }

// SendDTMF sends {"event":"websocket:dtmf","digit":"<d>","duration":260} for one key
// (0-9, *, #, A-D).
func (c *Client) SendDTMF(d byte) error {
	if _, ok := wsaudio.Digit(string(d)); !ok {
		return ErrDigit
	}
	return c.c.SendText([]byte(`{"event":"websocket:dtmf","digit":"` + string(d) + `","duration":260}`))
}

// Events returns what the client observed; the channel closes after SimClosed.
func (c *Client) Events() <-chan media.SimEvent { return c.c.Events() }

// Err returns the first protocol error the server made, or nil.
func (c *Client) Err() error { return c.c.Err() }

// Close closes the socket with 1000, as Vonage does when the caller hangs up. Idempotent.
func (c *Client) Close() error { return c.c.Close() }
