// Package wsjson owns what the Twilio-style JSON media streams have in common, so that their
// adapters (media/twilio, media/telnyx; reference/telephony-protocols.md §1 and §2) keep only
// their dialect: the Stream that turns one such WebSocket into the working half of a
// media.Leg, the in-place JSON scanner and message parser of the inbound hot path, the wire
// form of prompts (base64 G.711 or L16 in one-second media messages, cached once per clip
// and codec), the handler plumbing around a stream (upgrade settings, the start timeout, start
// and end logging), and the Peer that plays the platform's side in simulated clients.
//
// # What an adapter supplies
//
// A dialect parses each inbound text message with a Parser configured with its key names
// (sequenceNumber/streamSid or sequence_number/stream_id), checks it against its own rules,
// and reports through the Stream: Started once the call's metadata is known, the Receiver for
// audio and digits, Ack for mark echoes, End or Fail when the stream is over. Outbound it
// supplies a Wire: the message prefixes for media and marks, the clear message and the codec.
// Everything else — reading within a size limit, the single writer, the outbound queue,
// clear generations, the FIFO of marks awaiting their echo, close codes and the closing
// handshake — is here.
//
// # Framing and memory
//
// gorilla/websocket performs the opening handshake (RFC 6455 §4); from then on a stream reads
// and writes the frames itself (§5), because that is where a call's memory and the per-frame
// cost go. An inbound message that arrives in one frame is unmasked and parsed where it lies in
// the read buffer net/http read the upgrade request with, so reading a 20 ms media message
// allocates and copies nothing; every outbound message is built in a buffer taken from a pool
// shared by all streams and written with one system call, so an idle call holds no write
// buffer. The writer goroutine runs only while there is something to send: between prompts a
// stream has one goroutine, its reader. Pings are answered, close frames echoed, and framing
// errors closed with 1002, as gorilla/websocket does. On the platform's side, the Peer writes
// its masked text frames the same way, without allocating per message.
//
// # Playback model
//
// These platforms buffer playback (telephony-protocols §1.5, §8 pitfall 6): a whole prompt goes
// out at once, in media messages of at most one second of whole 20 ms frames (pitfalls 5 and
// 16), followed by a mark named after the prompt, which the platform echoes once the audio
// before it has played. Barge-in is the platform's clear message: the platform drops its queue
// and echoes every pending mark at once, so the Stream reports marks pending at a clear as not
// played (pitfall 3).
//
// # Errors and close codes
//
// A peer that breaks the protocol ends only its own call, with a WebSocket close code
// (RFC 6455 §7.4.1) carried by a *Violation: 1003 for binary frames, 1007 for malformed data
// (bad JSON, bad base64, bad counters), 1008 for messages the protocol does not allow at that
// point, 1009 for messages larger than the read limit. Reasons never quote what the caller
// keyed. The flow sees a Hangup event wrapping media.ErrProtocol.
package wsjson
