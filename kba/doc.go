// Package kba owns Callproof's verification rules: the customer directory and its validation,
// the knowledge factors a caller keys in (what each question expects, how an entry is
// normalised, how it is matched in constant time), one-time passcode generation and checking,
// the CCPA policy table that says which request needs which degree of certainty, the decision
// that turns factor results into an outcome, the lockout rule, store keys for subjects, RFC 8176
// "amr" values, and a Secret type whose every encoding is redacted.
//
// kba is pure logic. It parses bytes and computes; it does no I/O, keeps no state between calls
// and imports no other Callproof package (deps_test.go enforces it). Stores, clocks, prompts and
// audio come in through the packages that use kba.
//
// # Policies (11 CCR §§7060–7063)
//
// DefaultPolicies follows the CCPA regulations:
//
//   - opt_out and limit are never verified (§7060(b)); Level none.
//   - know_categories needs a reasonable degree of certainty: two matching data points (§7062(b)).
//   - know_specific needs a reasonably high degree of certainty: three matching data points and a
//     declaration under penalty of perjury (§7062(c)). When it fails, Policies.Fallback turns the
//     outcome into a know_categories one if enough factors passed (§7024(a)).
//   - delete and correct use the reasonable tier by default (§7062(d) lets the business choose).
//     A correction must not be verified with the data being corrected (§7060(h)): callers use
//     FactorsForField and Policy.Excluding to drop it before asking.
//   - account_service (an ordinary account call, not a CCPA request) uses two points.
//
// # What never leaves this package in clear
//
// Nothing kba returns as an error contains a caller's entry or a directory secret (answers, PIN,
// TOTP secret, account number); directory errors name the customer id and the field. Normalised
// answers are as sensitive as the keyed ones; wrap them in Secret before they go near a log.
//
// # Constant time
//
// Match compares every answer with crypto/subtle over fixed-size buffers, so neither the
// answer's value nor the stored value's length changes the work done; with no customer (an
// unknown account) it compares against a dummy record and reports false, so known and unknown
// accounts take the same path (reference/verification.md §5.3, account enumeration).
package kba
