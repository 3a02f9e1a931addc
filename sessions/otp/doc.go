// Package otp owns one-time passcodes sent to a contact on file: their generation, their
// state (stored only as an HMAC), the rules that bound checks and sends, and their delivery
// by webhook, SMTP email, Twilio SMS or, for the demo, an in-memory inbox.
//
// # Rules (NIST SP 800-63B-4 §3.1.3, §3.2.2; reference/verification.md §2, §3.1, §7 item 4)
//
//   - A code has Config.Digits decimal digits (6 to 10, default 6), each drawn uniformly from
//     crypto/rand by rejection sampling (§3.2.12: an approved random bit generator).
//   - It is valid for Config.TTL (at most 10 minutes, default 5) and accepted once: a
//     successful Check consumes it.
//   - Each code takes at most Config.MaxChecks wrong entries (default 5, Twilio Verify's
//     figure); after that it is dead and Check returns ErrExhausted until the subject's
//     record lapses.
//   - Issuing a new code never resets the failure count (§3.1.3: "issuing a new code must not
//     reset the failure counter"): a resent code inherits the failures of the one it replaces,
//     and Send refuses to issue a code once the count is exhausted.
//   - Stores keep HMAC-SHA256(Config.HMACKey, subject || 0x00 || code), never the code, and
//     Check compares MACs with hmac.Equal (constant time).
//
// # SMS pumping and other abuse of sends (reference/verification.md §5.3)
//
// Three defences, all on by default:
//
//  1. Codes go only to contacts on file. SendRequest.Contacts comes from the customer
//     directory; there is no way to hand Send a number the caller keyed in, and the call flow
//     must never build a Contact from caller input. This alone shuts off toll fraud by
//     pumping premium numbers.
//  2. Per subject: at most Config.MaxSendsPerSubject codes per Config.SendWindow (default 3 per
//     hour) and at least Config.ResendAfter between two (default 30 s). Refusals are
//     *RateLimitError values that match ErrRateLimited and carry RetryAfter.
//  3. Globally, per process: a token bucket from golang.org/x/time/rate caps all sends
//     (DefaultGlobalPerMinute with DefaultGlobalBurst; WithGlobalLimit changes or disables
//     it). It bounds the cost of a flood of distinct accounts and, because unknown accounts
//     create records too, the size of the in-memory store. With several nodes each has its
//     own bucket; size it per node.
//
// # Unknown accounts stay indistinguishable (DESIGN.md "Rules that hold everywhere")
//
// The call flow cannot tell the caller whether an account number exists. It therefore calls
// Send for an unknown account too, with the subject derived from the keyed account number and
// no Contacts. Send then takes the same path (code generation, HMAC, rate limits, the store
// write that counts the send) and, instead of delivering, waits about as long as recent real
// deliveries took (an exponential moving average, WithDecoyLatency sets the starting value).
// It returns a Sent of the same shape: the channel a customer would most likely get and a
// masked destination derived from the subject, so that it is stable across calls for the
// same account number. Nothing is delivered, and nobody can pass Check for that subject:
// every entry fails, exhausts and rate limits exactly like a wrong code on a real account.
// A known customer none of whose contacts has a sender takes the same path (and is logged, as
// the operator's configuration problem it is).
//
// MaskedTo is for the agent and the logs. The caller must not hear it before verification
// succeeds: even a masked number reveals that an account exists.
//
// What the two paths cannot share is a delivery failure: a webhook that is down makes Send
// fail with ErrDelivery for a real customer only. The call flow should therefore treat
// ErrDelivery like success towards the caller (say the code was sent, ask for it, let the
// check fail) and report the failure to the agent and the logs; store errors (ErrUnavailable)
// hit both paths alike and end in technical_difficulty.
//
// # Secrets
//
// A code is a Passcode: every encoding of it (fmt, JSON, zap, slog) is redacted, and senders
// reveal it only into the message they deliver. No log line or error of this package contains
// a code; errors coming back from a sender are scrubbed of it before they are returned.
// Destinations are logged masked (Mask). The demo Inbox is the one deliberate exception: it
// shows codes on the demo console and at GET /v1/demo/inbox, and must never be wired into a
// production server.
//
// otp imports no other Callproof package: subjects arrive already hashed
// (kba.SubjectKey in the call flow) and contacts arrive as plain values.
package otp
