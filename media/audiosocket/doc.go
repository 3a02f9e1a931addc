// Package audiosocket owns Callproof's side of Asterisk AudioSocket: the TCP server that turns
// each AudioSocket connection into a media.Leg, the call registry that supplies the caller
// metadata AudioSocket cannot carry, and a Client that plays Asterisk's role for
// `callproof call --platform audiosocket`, load tests and integration tests.
//
// The protocol is Asterisk's res_audiosocket (summarised in reference/telephony-protocols.md
// §6.1). Asterisk is the TCP client; the dialplan runs AudioSocket(<uuid>,host:port) (or dials
// AudioSocket/host:port/<uuid>), and every message is a TLV frame:
//
//	kind uint8 | length uint16, big-endian | payload[length]
//
// with these kinds:
//
//   - 0x01 UUID, always the first frame: the 16-byte binary UUID given in the dialplan.
//     Anything else first is a protocol error.
//   - 0x10 audio: signed linear 16-bit little-endian mono at 8 kHz, normally 320 bytes per
//     20 ms. It flows both ways.
//   - 0x03 DTMF: one ASCII digit (Asterisk 20.x and later builds with the DTMF patch; older
//     builds send none, which is what Config.NewDetector is for).
//   - 0x00 hangup (either way; closing the socket is equivalent) and 0xff error, from Asterisk,
//     with an optional one-byte code (0x01 caller hung up, 0x02 frame forwarding error, 0x04
//     memory error).
//
// We send only kinds 0x10 and 0x00: Asterisk tears the session down on any other kind
// (telephony-protocols §8, pitfall 15), so the UUID is never echoed and digits never sent.
// Asterisk writes each audio frame it receives straight to the channel with no queue or jitter
// buffer, so the leg owns the playout clock: one 320-byte frame per 20 ms tick of a deadline
// ticker anchored at the start of playback, so that frames neither drift nor burst
// (pitfall 6). AudioSocket has no marks: the leg reports a clip's mark when it has written the
// clip's last frame (Info().NativeMarks is false). Barge-in is stopping: Clear drops the queue.
//
// AudioSocket carries no caller metadata, only the UUID. The server asks Config.Lookup for
// the call's media.Start by UUID; Registry is an in-memory Lookup with a time to live, fed by
// POST /v1/audiosocket/calls (RegistryHandler), so the dialplan can make the UUID itself,
// register the call under it and then start AudioSocket:
//
//	same => n,Set(CP_UUID=${UUID()})
//	same => n,AGI(callproof-register.agi,${CP_UUID})  ; your script (or ARI, func_curl...)
//	same => n,AudioSocket(${CP_UUID},callproof.internal:9092)
//
// where the registration step sends
//
//	POST /v1/audiosocket/calls
//	Authorization: Bearer <key>
//	{"uuid":"<CP_UUID>","from":"+14155550100","to":"+18005550199","verstat":"TN-Validation-Passed-A","request":"delete","lang":"en-US"}
//
// Registrations live RegistryConfig.TTL (2 minutes by default) and are used once. A call whose
// UUID is not registered starts with CallID set to the UUID and no caller metadata.
//
// AudioSocket has no authentication and no TLS: keep it on a private network, and list the
// Asterisk hosts in Config.AllowFrom, which is then the protocol's only authentication.
// Connections from other addresses are closed before a byte is read.
//
// Peer mistakes end only the call that made them: the leg sends a hangup frame, closes the
// socket and reports a Hangup event wrapping media.ErrProtocol; the server keeps serving.
package audiosocket
