// Package webrtc owns Callproof's browser call path: the WebRTC endpoint that turns one
// browser call (PCMU/PCMA audio and RFC 4733 telephone-events over DTLS-SRTP) into a media.Leg,
// the /phone softphone page that places such calls, and a Client that plays the browser's role
// for `callproof call --platform webrtc`, `callproof load` and tests. It is the only package that
// imports pion/webrtc.
//
// # Signalling
//
// The endpoint follows WHIP (RFC 9725) without trickle ICE: POST /v1/webrtc with
// Content-Type application/sdp and the offer as the body; the server answers 201 Created with
// the SDP answer (Content-Type application/sdp) once its ICE gathering has completed, a
// Location /v1/webrtc/<id> naming the call, and Callproof-Call-Id (the call id, "WR…", which
// agents see). DELETE on the Location hangs up (200, or 404 for an unknown id); the id is 128
// random bits and is the only capability needed to hang up, so it is never logged or shown to
// agents. Refusals: 415 for another content type, 429 past Config.OffersPerMinute for the
// source address (with Retry-After), 413 past Config.MaxOfferBytes, 400 for text that is not an
// SDP offer with an audio section (or a bad parameter), 406 when no audio section offers PCMU
// or PCMA sendrecv, 503 while shutting down or at Config.MaxCalls. A refused offer leaves no
// peer connection behind. The page is same-origin and the endpoint sends no CORS headers; a
// cross-origin page cannot post application/sdp without a preflight the server does not grant.
//
// The call's parameters come from the offer request's query string (request, lang, account)
// or from Callproof-Request, Callproof-Lang and Callproof-Account headers. A browser caller
// has no phone number: Start.From and Start.To are empty and Start.Transport is "webrtc".
//
// # Media
//
// Codecs are PCMU, PCMA and telephone-event/8000 only (RFC 3551, RFC 4733 §7.1.2); the
// answer uses the offer's payload types, so telephone-event is whatever the browser chose
// (Chrome: 126) and every packet is classified by its payload type against this call's
// negotiated list, never against a constant. Inbound G.711 is decoded to PCM for the
// media.Receiver; telephone-events go through media/dtmf's RFC 4733 §2.5.2 receiver, so each
// key press becomes exactly one digit (SourceRFC4733) however many packets carry it. Outbound,
// the leg sends one 20 ms frame per deadline of a monotonic schedule while a prompt plays and
// nothing in between (RFC 3551 §4.1: the first packet after a pause has the marker bit); a
// clip's mark is reported when its last frame has been sent (Info.NativeMarks is false), and
// Clear stops the prompt at the next frame, reporting its mark and the queued ones with Played
// false.
//
// A call ends when the flow hangs up (DTLS close_notify tells the browser at once), on DELETE
// or when the browser closes its peer connection (Hangup event with media.ErrHangup), when ICE
// fails or disconnects (ErrICE), or after Config.MediaTimeout without inbound RTP
// (ErrMediaTimeout). Handler.Close ends every live call (ErrShutdown) and waits for them.
//
// # The page
//
// PageHandler serves /phone, /phone.js and /phone.css from embedded files with a
// Content-Security-Policy that allows no inline script or style. The page offers its
// microphone (or, without one, a silent track so the keypad still works), presses keys with
// RTCDTMFSender.insertDTMF, and shows the call's status. It also holds the demo passcode inbox:
// a hidden #inbox region filled by polling GET /v1/demo/inbox (see assets/phone.js for the JSON
// it expects; a 404 keeps it hidden and stops the polling).
package webrtc
