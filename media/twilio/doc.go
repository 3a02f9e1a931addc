// Package twilio owns Callproof's side of Twilio Media Streams in bidirectional mode
// (TwiML <Connect><Stream>): the WebSocket handler for GET /v1/twilio that turns one stream into
// a media.Leg, the voice webhook for POST /v1/twilio/voice that answers with the TwiML starting
// that stream, and a Client that plays Twilio's role for `callproof call`, `callproof load` and
// tests.
//
// The protocol is Twilio's "Media Streams - WebSocket Messages"
// (https://www.twilio.com/docs/voice/media-streams/websocket-messages), summarised in
// reference/telephony-protocols.md §1. What it shares with Telnyx's dialect (the parser, the
// writer, the mark FIFO, the simulated platform's transport) lives in media/wsjson.
//
//   - Twilio opens the socket with X-Twilio-Signature, base64(HMAC-SHA1(auth token, URL)),
//     computed over the exact wss:// URL of the <Stream> with no parameters (§1.2). Handler
//     checks it before the upgrade and answers 403 otherwise.
//   - Twilio sends JSON text frames only: "connected" once, "start" once (callSid, streamSid and
//     the <Parameter>s as customParameters), then "media" (base64 μ-law 8 kHz, normally 160
//     bytes = 20 ms), "dtmf", "mark" (the echo of a mark we sent) and finally "stop" (§1.3).
//     Every message but "connected" carries sequenceNumber; all counters are strings.
//   - We send only "media", "mark" and "clear" (§1.4); anything else is Twilio error 31924.
//     Twilio buffers playback, so a whole prompt goes out at once in messages of at most one
//     second (whole 20 ms frames), followed by a mark named after the prompt (§1.5). Barge-in
//     is "clear": Twilio drops the queue and echoes pending marks at once, so the leg keeps the
//     FIFO of marks it sent and reports those pending at the clear as not played
//     (telephony-protocols §8, pitfall 3).
//   - Closing the socket ends the stream and Twilio continues the TwiML after </Connect>
//     (§1.6).
//
// The webhook signature (https://www.twilio.com/docs/usage/security#validating-requests) is
// the same HMAC over the URL followed by the sorted POST parameters; StirVerstat and CallToken
// are reported to be added after signing (§1.7), so both forms are accepted.
//
// Peer mistakes end only the call that made them, with a WebSocket close code (RFC 6455
// §7.4.1): 1003 for binary frames, 1007 for malformed data (bad JSON, bad base64, bad
// counters), 1008 for messages the protocol does not allow at that point, 1009 for messages
// larger than Config.ReadLimit. The leg reports them as a Hangup event wrapping
// media.ErrProtocol.
package twilio
