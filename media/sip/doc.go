// Package sip owns Callproof's SIP user agent server: it answers calls that SIP trunks and
// PBXs send straight to Callproof (RFC 3261 over UDP and TCP), runs each as a media.Leg over its
// own RTP stream, and hands the finished call back with REFER or ends it with BYE. It is the only
// package that imports the SIP stack (github.com/emiago/sipgo, without diago); SDP is
// github.com/pion/sdp/v3 and RTP packets github.com/pion/rtp. It also has a Client that plays a
// trunk's caller for `callproof call --platform sip`, load tests and integration tests.
//
// # Admission
//
// An INVITE from an address in Config.AllowFrom is admitted as it is; any other is challenged
// with 401 and digest authentication against Config.Users (RFC 3261 §22.4, MD5 with qop=auth;
// stateless nonces valid five minutes; credentials in Authorization or Proxy-Authorization;
// the digest-uri must name our host, its user part is not compared because SIPp and some
// trunks leave it out). Bad credentials get 403, as does everyone when neither list is set.
// A Require header gets 420 (we implement no extension).
//
// # Media negotiation
//
// The offer (application/sdp, or the SDP part of a multipart body) is read with pion/sdp: the
// first audio m= line over RTP/AVP with a non-zero port, PCMU or PCMA at 8 kHz in the caller's
// order of preference, and telephone-event/8000 with the caller's payload type when offered
// (RFC 4733 §7.1.1; without it digits come by SIP INFO or in-band). Anything else is answered
// 488 Not Acceptable Here with a Warning; so is an offer pion cannot parse (a missing t= line
// is repaired first). The answer (RFC 3264) repeats every m= line, refusing the others with
// port 0, and offers our address (Config.PublicIP, else the listen address, else the address
// routed toward the caller) and one RTP socket per call from Config's port range. An INVITE
// without an offer gets our offer (PCMU, PCMA, telephone-event 101) in the 200 and its answer
// is read from the ACK. We send 100, 180 and 200, retransmit the 200 until the ACK arrives
// (§13.3.1.4), and only then start the leg.
//
// The leg's first event is media.Start: Transport "sip", CallID the Call-ID, From the user
// part of P-Asserted-Identity (RFC 3325) or From, in E.164 when it looks like a number, To
// the dialled user part, Verstat the "verstat" parameter of those URIs (ATIS-1000074 after
// RFC 8224), and the params "request" and "lang" from Config.RequestHeader and
// Config.LangHeader, or "request" from Config.DialedMap by dialled number.
//
// # RTP
//
// Inbound, G.711 is decoded to PCM for media.Receiver.Audio (so an in-band detector can run);
// RFC 4733 events go through media/dtmf's Receiver, which reports each key press once however
// the sender behaves: first packet with duration 0 (SIPp's captures), three end packets, lost
// start or end packets, a quickly repeated digit. Once an event has arrived the in-band
// detector is no longer fed, so a gateway that sends both is heard once. RTP is symmetric
// (RFC 4961): we send to the SDP address until the caller's RTP arrives, then to where it
// comes from. Duplicate and late audio packets, RTCP multiplexed on the RTP port (RFC 5761),
// payload types we did not negotiate and datagrams that are no RTP are counted and dropped;
// RTCP on port+1 is not bound. When the caller's RTP stops for Config.RTPTimeout while the
// caller is meant to be sending, the call ends with BYE (ErrRTPTimeout).
//
// Outbound, one 20 ms G.711 frame goes out per tick of a deadline clock (the timer is reset to
// anchor + k·20 ms, never slept for, so it does not drift); it carries the playing clip's next
// frame or silence, with the marker bit on a clip's first frame (RFC 3551 §4.1). SIP has no
// playback acknowledgements, so Info().NativeMarks is false and a clip's mark is reported
// when its last frame is sent; Clear drops the queue and reports the dropped marks with Played
// false. The reader, the send clock and the flow never wait for each other; the per-frame
// paths allocate nothing.
//
// # In the dialog
//
// SIP INFO with application/dtmf-relay or application/dtmf (media/dtmf.ParseSIPInfo) is
// routed by Call-ID and tags and reported as media.SourceSIPInfo before the 200 goes out, so
// key presses keep their order; an INFO without a body gets 200, one with a body that is no
// digit 400, other bodies 415. A re-INVITE is answered (hold and resume with a=sendonly,
// a=inactive or c=0.0.0.0, a new address, another G.711 codec): while the caller holds we
// send nothing, the clock and the marks run on and the RTP timeout is suspended; a re-INVITE
// whose offer has no G.711 gets 488 and the call goes on as it was; one without an offer gets
// our description as an offer. UPDATE without a body (a session refresh) gets 200, with one
// 488. OPTIONS gets 200 with Allow and Accept. The caller's BYE ends the leg with
// media.ErrHangup.
//
// # Completion
//
// Leg.Hangup (which the server also calls when the serve function returns) ends the leg with
// media.ErrLegClosed. Without Config.TransferURI we send BYE. With it we send REFER (RFC 3515)
// with Refer-To set to the target and, for each handoff header the flow attached with
// SetHandoff (the token in Config.TokenHeader), the header on the REFER and the same header
// inside Refer-To as a URI header, which the transferee copies into its INVITE to the target
// (RFC 3261 §19.1.5): that is how the agent's side receives the token. We then wait for the
// NOTIFY whose message/sipfrag has a final status, the caller's BYE, or
// Config.TransferTimeout, and send BYE. The flow finds SetHandoff with a type assertion on
// interface{ SetHandoff(map[string]string) }.
//
// # Malformed input
//
// A request sipgo parses but cannot build a transaction for gets 400 from sipgo. A UDP datagram
// that does not parse is dropped before sipgo sees it; when its first line is a SIP request
// line and its Via and Call-ID can be read, it is answered with a stateless 400 built from its
// Via, From, To, Call-ID and CSeq (binary garbage, responses and ACKs are dropped silently).
// Over TCP such a message breaks the framing and sipgo closes that connection. Requests for
// dialogs we do not know get 481, methods we do not implement 405 with Allow. None of this
// affects other calls.
//
// # Logging
//
// sipgo's log/slog output goes to the injected zap logger through zapslog, one level lower
// (its errors are mostly the peer's), with raw message data replaced by its length. Our own
// lines: one at the start of each call and one at its end with the counters, the caller
// masked with media.MaskPhone. Digits, INFO bodies, tokens and passwords are never logged.
//
// # Shutdown
//
// When Serve's context ends it stops admitting calls (503), ends every call with BYE, waits
// for them and for its handlers, stops passing messages to sipgo and lets those in flight
// settle, then closes the stack and both sockets: every goroutine it started has returned
// when Serve does.
package sip
