// Package telnyx owns Callproof's side of Telnyx media streaming in bidirectional RTP mode:
// the WebSocket handler for GET /v1/telnyx that turns one stream into a media.Leg, and a
// Client that plays Telnyx's role for `callproof call`, `callproof load` and tests.
//
// The protocol is Telnyx's "Stream call media over WebSocket" (the Media Streaming AsyncAPI,
// https://developers.telnyx.com/api-reference/websockets/stream-call-media-over-websocket),
// summarised in reference/telephony-protocols.md §2. It is a snake_case dialect of Twilio's
// (§1), and the machinery both share lives in media/wsjson:
//
//   - The Call Control application starts the stream (streaming_start, or stream_url on dial
//     and answer) with stream_auth_token; Telnyx presents it in the
//     X-Telnyx-Streaming-Auth-Token header of the upgrade (and again in the connected frame).
//     Handler compares it in constant time before upgrading: 401 without a token, 403 with a
//     wrong one.
//   - Telnyx sends JSON text frames: "connected", "start" (stream_id; call_control_id, from,
//     to, client_state, custom_parameters and media_format in start), then "media" (base64 RTP
//     payload, no RTP header, with chunk and timestamp), "dtmf", "mark" (the echo of a mark we
//     sent), "error" (it refused something we sent) and "stop". Counters are strings.
//   - Frame order is not guaranteed: the leg re-sequences media by chunk in a small jitter
//     buffer (five frames) and counts the holes it gives up on, the frames it put back in
//     place and those that came too late (§8, pitfall 9). sequence_number is checked for
//     form only.
//   - The leg decodes PCMU and PCMA (G.711) and L16 (big-endian, as in RTP) at 8 kHz mono and
//     answers in the same codec, so the application must set stream_bidirectional_codec to
//     the stream's codec. G722, OPUS, AMR-WB and other rates are refused with 1008 and a
//     reason naming what to configure.
//   - We send only "media", "mark" and "clear", with no stream_id (§2). Telnyx buffers
//     playback in RTP mode (stream_bidirectional_mode "rtp"; without it Telnyx drops what we
//     send, §8 pitfall 12), so a whole prompt goes out at once in messages of at most one
//     second (RTP mode takes 20 ms to 30 s each), followed by a mark named after the prompt.
//     Barge-in is "clear": Telnyx stops playback and returns the queued marks, which the leg
//     reports as not played.
//   - Caller metadata becomes media.Start{Transport: "telnyx"}: CallID is the
//     call_control_id, StreamID the stream_id, From and To come from start. The stream
//     parameters (request, lang, account, ...) come from custom_parameters and from
//     client_state when it is base64 of a JSON object of strings (custom_parameters win).
//     The stream carries no STIR/SHAKEN result: a verstat parameter is taken as is, or
//     shaken_stir_attestation and shaken_stir_validated, copied by the application from
//     call.initiated, are mapped to TN-Validation-Passed-A and the like.
//   - Closing the socket ends the stream, not the call (§2, §8 pitfall 12): see Leg.Hangup
//     for what the Call Control application must do then.
//
// Peer mistakes end only the call that made them, with a WebSocket close code (RFC 6455
// §7.4.1): 1003 for binary frames, 1007 for malformed data (bad JSON, bad base64, bad
// counters), 1008 for messages the protocol does not allow at that point (media before start,
// unknown events, unsupported formats), 1009 for messages larger than Config.ReadLimit. The
// leg reports them as a Hangup event wrapping media.ErrProtocol.
package telnyx
