// Package webhook owns the delivery of verification results to CRMs: a signed POST per event
// and configured URL, queued durably, retried with exponential back-off and full jitter, and
// dead-lettered when it keeps failing.
//
// # Wire format
//
//	POST <URL>
//	Content-Type: application/json
//	Callproof-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//	Idempotency-Key: <the token's jti>
//
//	{"type":"verification.completed","id":"<jti>","call":"CA…","outcome":"verified",
//	 "level":"reasonable","request":"know_categories","amr":["kba"],"token":"<JWT>",
//	 "at":"2026-01-02T15:04:05Z"}
//
// The signature is the OTP webhook's (DESIGN.md), computed afresh at each attempt over the
// same body; receivers check it with VerifySignature (constant-time, with a timestamp
// tolerance against replays), verify the token against the JWKS, and drop an Idempotency-Key
// they have already processed: every retry of one event carries the same key and body.
//
// # Delivery
//
// Dispatcher.Send puts one Delivery per configured URL on a Queue and returns once the queue
// holds it durably. The Dispatcher's workers lease due deliveries and POST them. Any 2xx
// acknowledges; a network error, 408, 429 or 5xx is retried after a back-off drawn uniformly
// from [0, min(MaxBackoff, BaseBackoff·2^(attempt−1))] (full jitter), and never before a
// Retry-After the receiver sent (seconds or HTTP date, honoured up to MaxRetryAfter); any
// other status is final. After MaxAttempts attempts, or on a final status, the delivery goes
// to the dead-letter list, which operators read (FileQueue.DeadLetters) and can requeue.
// Redirects are not followed.
//
// FileQueue is the embedded queue: an append-only, fsynced journal under the data directory,
// compacted when it grows, so that pending deliveries resume after a restart (at least once:
// a delivery in flight when the process died is sent again). A shared queue on Redis can
// implement the same Queue interface later; since DESIGN.md keeps tokens out of Redis in
// clear, give the Dispatcher a seal key (WithSealKey) and bodies are stored AES-256-GCM sealed
// in any queue.
package webhook
