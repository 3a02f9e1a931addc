// Package vonage owns Callproof's side of the Vonage Voice API WebSocket
// (https://developer.vonage.com/en/voice/voice-api/concepts/websockets, summarised in
// reference/telephony-protocols.md §3): the handler for GET /v1/vonage that turns one Vonage
// WebSocket into a media.Leg, and a Client that plays Vonage's role for `callproof call
// --platform vonage`, `callproof load` and tests.
//
// The answer webhook returns an NCCO whose connect action points a websocket endpoint at the
// server, with content-type audio/l16;rate=8000 or 16000 and headers carrying the call (the
// webhook's uuid, from and to; request, lang and account when the application knows them):
//
//	[{"action": "connect", "eventType": "synchronous",
//	  "eventUrl": ["https://app.example.com/vonage/event"],
//	  "endpoint": [{"type": "websocket",
//	    "uri": "wss://callproof.example.com/v1/vonage/<token>",
//	    "content-type": "audio/l16;rate=16000",
//	    "headers": {"uuid": "<uuid>", "from": "<from>", "to": "<to>",
//	                "request": "delete", "lang": "en-US"}}]}]
//
// The protocol, as this package implements it:
//
//   - Authentication: Vonage signs nothing we can check without an account secret, so the
//     server shares a token with the NCCO (Config.Token). Recommended: the last path segment of
//     the URI, wss://host/v1/vonage/<token> (mount the handler on "GET /v1/vonage/{token}" as well). Also
//     accepted: ?token=<token>, and "Authorization: Bearer <token>" for NCCOs whose websocket
//     endpoint sets an Authorization header (§3 [U]). Anything else gets 401 before the upgrade.
//   - Vonage sends a text message first, {"event":"websocket:connected","content-type":
//     "audio/l16;rate=16000", ...headers}, flattening the NCCO headers into it; it becomes
//     media.Start{Transport:"vonage"}: From, To and Verstat from the headers of those names,
//     CallID from uuid, call_uuid or conversation_uuid (else a generated "vonage-…" id) and
//     every other string header as a stream parameter.
//   - Then binary messages of exactly one 20 ms frame of 16-bit little-endian PCM: 320 bytes
//     at 8 kHz, 640 at 16 kHz. 16 kHz audio is converted to 8 kHz with resample.Down. Text
//     messages that may follow: websocket:dtmf (digit at top level, or dtmf.digit),
//     websocket:notify (the echo of a notify we sent), websocket:cleared.
//   - We send binary frames of exactly one 20 ms frame at the stream's rate (prompts converted
//     with resample.UpClip at 16 kHz and cached per clip), {"action":"notify","payload":
//     {"mark":"<prompt>","seq":N}} after each prompt, and {"action":"clear"} for barge-in.
//     Vonage queues playback (about 20 s per the older documentation, 60 s per the newer);
//     the leg keeps at most Config.MaxLead (default 5 s) queued and then sends one frame per
//     20 ms of playback. The echoed websocket:notify is the mark (NativeMarks true). After a
//     clear the marks then pending are reported unplayed at once; a notify Vonage may still
//     echo for them is ignored.
//   - Closing the socket ends the connect action and the NCCO continues (§3). The call ends on
//     Vonage's side with REST PUT /v1/calls/{uuid} {"action":"hangup"}, which is the
//     application's job, not this adapter's.
//
// Peer mistakes end only their own call with a close code (see media/wsaudio): 1007 for bad
// JSON or a frame of the wrong size, 1008 for audio before websocket:connected, an unknown
// event or an unsupported rate, 1009 above Config.ReadLimit.
package vonage
