package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/asterisk"
	"github.com/callproof/callproof/media/audiosocket"
	"github.com/callproof/callproof/media/freeswitch"
	"github.com/callproof/callproof/media/jambonz"
	"github.com/callproof/callproof/media/sip"
	"github.com/callproof/callproof/media/telnyx"
	"github.com/callproof/callproof/media/twilio"
	"github.com/callproof/callproof/media/vonage"
	"github.com/callproof/callproof/media/webrtc"
)

// platforms the simulated caller speaks.
var simPlatforms = []string{"twilio", "telnyx", "vonage", "jambonz", "freeswitch", "asterisk", "audiosocket", "webrtc", "sip"}

// simDialect says how the simulated caller reads a platform's stream.
type simDialect struct {
	named  bool // marks carry prompt ids
	played bool // the client reports SimPlayed after real-time playback
	ulaw   bool // the caller hears μ-law (prompts recognised after a μ-law round trip)
}

// dialPlatform opens the platform's side of a call. named reports whether the platform's marks
// carry prompt ids; ulaw whether the caller hears μ-law (prompts are then recognised after a
// μ-law round trip).
func dialPlatform(ctx context.Context, o callOptions, callID string, params map[string]string, out io.Writer) (simCall, simDialect, string, error) {
	sim, named, ulaw, id, err := dial(ctx, o, callID, params, out)
	d := simDialect{named: named, ulaw: ulaw, played: o.platform == "twilio" || o.platform == "" || o.platform == "vonage"}
	return sim, d, id, err
}

func dial(ctx context.Context, o callOptions, callID string, params map[string]string, out io.Writer) (sim simCall, named, ulaw bool, id string, err error) {
	id = callID
	fail := func(err error) (simCall, bool, bool, string, error) { return nil, false, false, "", err }
	withVerstat := func() map[string]string {
		p := map[string]string{"verstat": o.verstat}
		for k, v := range params {
			p[k] = v
		}
		return p
	}
	say := func(u string) { fmt.Fprintf(out, "call %s -> %s from %s\n", id, u, media.MaskPhone(o.from)) }
	switch o.platform {
	case "vonage":
		u, err := wsURL(o.server, vonage.StreamPath)
		if err != nil {
			return fail(err)
		}
		say(u)
		cl, err := vonage.Dial(ctx, u, vonage.CallParams{CallID: callID, From: o.from, To: o.to, Verstat: o.verstat,
			Params: params, Token: o.platformPassword}, vonage.WithRealtime(o.realtime))
		if err != nil {
			return fail(fmt.Errorf("stream: %w", err))
		}
		return cl, false, false, id, nil // recognised by audio, so a barge-in can answer as a prompt starts
	case "jambonz":
		u, err := wsURL(o.server, jambonz.StreamPath)
		if err != nil {
			return fail(err)
		}
		say(u)
		cl, err := jambonz.Dial(ctx, u, jambonz.CallParams{CallID: callID, From: o.from, To: o.to, Verstat: o.verstat,
			Params: params, Username: o.platformUser, Password: o.platformPassword}, jambonz.WithRealtime(o.realtime))
		if err != nil {
			return fail(fmt.Errorf("stream: %w", err))
		}
		return cl, false, false, id, nil
	case "freeswitch":
		u, err := wsURL(o.server, freeswitch.StreamPath)
		if err != nil {
			return fail(err)
		}
		say(u)
		cl, err := freeswitch.Dial(ctx, u, freeswitch.CallParams{CallID: callID, From: o.from, To: o.to, Verstat: o.verstat,
			Params: params, Username: o.platformUser, Password: o.platformPassword}, freeswitch.WithRealtime(o.realtime))
		if err != nil {
			return fail(fmt.Errorf("stream: %w", err))
		}
		return cl, false, false, id, nil
	case "sip":
		opts := []sip.ClientOption{sip.WithFrom(o.from), sip.WithTo(strings.TrimPrefix(o.to, "+")), sip.WithVerstat(o.verstat)}
		if r := params["request"]; r != "" {
			opts = append(opts, sip.WithHeader(sip.DefaultRequestHeader, r))
		}
		if l := params["lang"]; l != "" {
			opts = append(opts, sip.WithHeader(sip.DefaultLangHeader, l))
		}
		if o.platformUser != "" {
			opts = append(opts, sip.WithAuth(o.platformUser, o.platformPassword))
		}
		cl, err := sip.Dial(ctx, o.sip, opts...)
		if err != nil {
			return fail(fmt.Errorf("sip: %w", err))
		}
		id = cl.CallID()
		say("sip:" + o.sip)
		return cl, false, true, id, nil
	case "webrtc":
		u := strings.TrimSuffix(o.server, "/") + webrtc.OfferPath
		cl, err := webrtc.Dial(ctx, u, webrtc.WithParams(withVerstat()), webrtc.WithContinuousAudio(true))
		if err != nil {
			return fail(fmt.Errorf("offer: %w", err))
		}
		id = cl.CallID()
		say(u)
		return cl, false, true, id, nil
	}
	switch o.platform {
	case "twilio", "":
		u, err := wsURL(o.server, twilio.StreamPath)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "call %s -> %s from %s\n", callID, u, media.MaskPhone(o.from))
		cl, err := twilio.Dial(ctx, u, twilio.CallParams{
			CallSid: callID, StreamSid: "MZ" + callID[2:], AccountSid: "AC" + strings.Repeat("0", 32),
			From: o.from, To: o.to, Verstat: o.verstat, Params: params, AuthToken: o.authToken,
		}, twilio.WithRealtimePlayback(o.realtime))
		if err != nil {
			return fail(fmt.Errorf("stream: %w", err))
		}
		return newTwilioSim(cl), true, true, id, nil
	case "telnyx":
		u, err := wsURL(o.server, telnyx.StreamPath)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "call %s -> %s from %s\n", callID, u, media.MaskPhone(o.from))
		p := map[string]string{"verstat": o.verstat}
		for k, v := range params {
			p[k] = v
		}
		cl, err := telnyx.Dial(ctx, u, telnyx.CallParams{CallControlID: callID, From: o.from, To: o.to, Params: p,
			Encoding: "PCMU", SampleRate: 8000, AuthToken: o.platformPassword}, telnyx.WithRealtimePlayback(o.realtime))
		if err != nil {
			return fail(fmt.Errorf("stream: %w", err))
		}
		return cl, true, true, id, nil
	case "asterisk":
		u, err := wsURL(o.server, asterisk.Path)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "call %s -> %s from %s\n", callID, u, media.MaskPhone(o.from))
		cl, err := asterisk.Dial(ctx, u, asterisk.DialOptions{Username: o.platformUser, Password: o.platformPassword,
			Format: "slin", ChannelID: callID, From: o.from, To: o.to, Verstat: o.verstat, Params: params, Realtime: o.realtime})
		if err != nil {
			return fail(fmt.Errorf("stream: %w", err))
		}
		return cl, false, false, id, nil
	case "audiosocket":
		uuid, err := audiosocket.ParseUUID(callID)
		if err != nil {
			return fail(err)
		}
		if err := registerAudioSocket(ctx, o, callID, params); err != nil {
			return fail(fmt.Errorf("register call: %w", err))
		}
		fmt.Fprintf(out, "call %s -> audiosocket %s from %s\n", callID, o.audiosocket, media.MaskPhone(o.from))
		cl, err := audiosocket.Dial(ctx, o.audiosocket, uuid, audiosocket.WithRealtimeAudio(true)) // Asterisk streams audio all call long
		if err != nil {
			return fail(fmt.Errorf("audiosocket: %w", err))
		}
		return cl, false, false, id, nil
	}
	return fail(fmt.Errorf("platform %q: want one of %s", o.platform, strings.Join(simPlatforms, ", ")))
}

// registerAudioSocket tells the server who is calling before the AudioSocket connection
// arrives, as a dialplan does with CURL() before AudioSocket().
func registerAudioSocket(ctx context.Context, o callOptions, uuid string, params map[string]string) error {
	body := map[string]string{"uuid": uuid, "from": o.from, "to": o.to, "verstat": o.verstat}
	for k, v := range params {
		body[k] = v
	}
	data, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(o.server, "/")+audiosocket.RegistryPath, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+o.registrationKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}
