// Package asterisk owns Callproof's side of Asterisk's WebSocket channel driver,
// chan_websocket (Asterisk 20.16, 21.11, 22.6, 23.0 and later): the handler for
// GET /v1/asterisk that turns one media WebSocket into a media.Leg, and a Client that plays
// Asterisk's role for `callproof call`, load tests and integration tests.
//
// The protocol is the "WebSocket" channel driver page of docs.asterisk.org and
// channels/chan_websocket.c, summarised in reference/telephony-protocols.md §6.2. Asterisk
// dials us: websocket_client.conf names this server (type=websocket_client,
// connection_type=per_call_config, uri=wss://callproof.example/v1/asterisk, username and
// password for HTTP Basic), and the dialplan bridges the caller to
//
//	Dial(WebSocket/callproof/c(ulaw)v(from=${URIENCODE(${CALLERID(num)})},to=${URIENCODE(${EXTEN})}))
//
// (keep Asterisk's auto-answer: the leg never sends ANSWER, so do not add the n option).
// Binary messages carry raw media in the dial string's codec; text messages carry control,
// case-sensitive, in the legacy single-line format or, with f(json) or
// control_message_format=json, as JSON objects. Both are understood; replies use the call's.
//
//   - Asterisk sends MEDIA_START first (connection_id, channel, channel_id, format,
//     optimal_frame_size, ptime; with JSON also channel_variables), then binary audio,
//     DTMF_END digit:N, MEDIA_XOFF / MEDIA_XON (flow control at 900 / 800 queued frames),
//     MEDIA_BUFFERING_COMPLETED <id>, QUEUE_DRAINED, STATUS and ERROR.
//   - We send START_MEDIA_BUFFERING, the prompt in binary messages of at most one second
//     (whole 20 ms frames, far below the 65 500-byte limit beyond which Asterisk hangs up),
//     then STOP_MEDIA_BUFFERING <id>. Asterisk frames and times the audio itself, and sends
//     MEDIA_BUFFERING_COMPLETED <id> when the prompt's last frame has gone to the channel:
//     that is the prompt's mark. Sending pauses on MEDIA_XOFF until MEDIA_XON, and never runs
//     more than 10 s ahead of real time (Asterisk queues about 20 s).
//   - Barge-in is FLUSH_MEDIA, which also discards the MEDIA_BUFFERING_COMPLETED queued
//     behind the audio, so the marks pending are reported not played at once; we follow it with
//     REPORT_QUEUE_DRAINED, whose QUEUE_DRAINED confirms the flush.
//   - Hangup is HANGUP (the channel hangs up and the dialplan continues after Dial), then a
//     close frame.
//
// Formats: ulaw, alaw and slin (8 kHz) are used as they are; slin16 (16 kHz) goes through a
// small half-band FIR resampler in this package (2:1 down for the caller, 1:2 up for
// prompts). Any other format, and passthrough mode (p(), or optimal_frame_size 0), is refused
// with close code 1003 and a reason naming what to dial instead.
//
// Caller metadata comes from the query string Asterisk's v() option adds to the URL (from,
// to, verstat, request, lang, account) and, with JSON control messages, from MEDIA_START's
// channel variables CALLPROOF_FROM, CALLPROOF_TO, CALLPROOF_VERSTAT, CALLPROOF_REQUEST,
// CALLPROOF_LANG and CALLPROOF_ACCOUNT (set them with a double-underscore prefix before Dial
// so the WebSocket channel inherits them), which win over the query. The call id is
// MEDIA_START's channel_id (Asterisk's unique id), else its connection_id.
//
// Peer mistakes end only the call that made them, with a close code (RFC 6455 §7.4.1) and a
// reason: 1003 for a format we cannot take, 1007 for malformed data (bad control syntax, a
// binary message that is not whole samples or longer than 200 ms), 1008 for messages not
// allowed at that point (an unknown event, anything but audio before MEDIA_START, more than a
// second of audio before it — Asterisk is known to send the first frames early, asterisk
// issue #1712, so up to 50 are dropped — or a second MEDIA_START), 1009 for messages over
// 64 KiB. Before the upgrade: 403 for an address outside AllowFrom, 401 without the right
// HTTP Basic credentials, 400 for malformed metadata in the query.
package asterisk
