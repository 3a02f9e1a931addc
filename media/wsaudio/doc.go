// Package wsaudio owns what the WebSocket L16 platforms (Vonage, jambonz listen and FreeSWITCH
// mod_audio_fork; reference/telephony-protocols.md §3–§5) have in common, so that their
// adapters under media/ stay thin: the Leg that turns one such stream into a media.Leg, the
// handler plumbing around it (authentication helpers, subprotocol negotiation, the start
// timeout, start and end logging), the wire form of prompts as 16-bit little-endian PCM at 8 or
// 16 kHz, and the core of the simulated platform clients.
//
// # What a platform supplies
//
// A Protocol parses the platform's text messages: the first one (call metadata and the audio
// rate, reported as media.Start) and those that follow (digit events, playback
// acknowledgements). An Output says how audio, marks, barge-in and hang-up look on the wire.
// Everything else — reading, reframing and resampling inbound audio, the outbound queue, the
// playback clock, pacing, marks, close codes — is here.
//
// # Inbound audio
//
// Binary messages carry L16 little-endian mono PCM at the stream's rate (8000 or 16000 Hz).
// The leg reassembles them into 20 ms frames (platforms other than Vonage send whatever their
// buffer holds), converts 16 kHz frames to 8 kHz with resample.Down, and hands each 8 kHz frame
// to the media.Receiver, which runs in-band DTMF detection when configured. This path does not
// allocate once the leg's buffers have grown (gorilla/websocket itself allocates one small
// reader per message).
//
// # Outbound audio, pacing and marks
//
// Every platform here buffers playback, so a prompt goes out faster than real time. The leg
// keeps a playback clock — when the audio sent so far will have finished playing — and, when
// Output.MaxLead is set, never lets it run more than MaxLead ahead of now: beyond that it
// sends one message each time the clock has advanced by that message's length, which is real
// time with MaxLead of slack for network jitter (telephony-protocols §8, pitfall 6). Barge-in
// sends the platform's clear message, drops what is queued and rewinds the clock.
//
// Marks are native when the platform acknowledges them (Vonage notify): the leg sends the
// mark message after the prompt and reports media.EventMark when the acknowledgement returns.
// Otherwise they are emulated from the playback clock: the mark is reported when the clock
// passes the end of the prompt. Either way every Play yields exactly one mark event, with
// Played false when a Clear discarded the prompt; a native acknowledgement for a mark already
// reported as discarded is ignored (pitfall 3).
//
// # Errors and close codes
//
// A peer that breaks the protocol ends only its own call, with a WebSocket close code
// (RFC 6455 §7.4.1) and a reason that never quotes what the caller keyed: 1003 for a binary or
// text message where the protocol has none, 1007 for malformed data (bad JSON, odd-length or
// wrongly sized audio), 1008 for a message not allowed at that point (binary before the
// metadata, unknown message kinds, unsupported rates), 1009 for a message above the read
// limit. The flow sees a hang-up wrapping media.ErrProtocol.
package wsaudio
