// Package audit owns the CCPA §7101 record of every consumer request Callproof handles, and the
// §7102 metrics computed from it.
//
// # Records
//
// One Record per request taken on a call: when it was received and answered, what was asked
// (know_categories, delete, ...), through which channel and platform, the outcome, the basis
// of any denial in the four §7102 buckets (DenialBasis), whether the §7062(c) declaration was
// made, which factors passed or failed (names only), the token's jti and the level reached.
// A Record never holds a value the caller keyed, a phone number or a token: it has no field
// for them, and Validate refuses a call id that looks like a phone number and a jti that looks
// like a JWT.
//
// # The file
//
// Log appends records to <data>/audit.jsonl, one JSON object per line, in a hash chain:
//
//	{"v":1,"id":"req_…",…,"level":"reasonable","prev":"<64 hex>","hash":"<64 hex>"}
//
// hash is hex SHA-256 over the 64 ASCII hex characters of prev followed by the record's
// canonical JSON: the line itself up to, not including, `,"prev"`, closed with `}`. prev is
// the previous line's hash; the first line of a fresh file has prev = 64 zeros (Genesis).
// Canonical JSON is what encoding/json writes for the record's fields in their fixed order,
// with times in UTC as RFC 3339 with nanoseconds (trailing zeros dropped, an unset time as "").
// Verify re-encodes every line and requires byte equality, so an added field, a reordered key,
// an escaped character or a changed time zone is reported like a changed value.
//
// Appends from many goroutines are group-committed: one writer goroutine takes every append
// waiting, writes them in one write and one fsync, then answers them all; Append returns only
// once its record is on disk. Open checks every hash and link, and recovers from a crash: a partial last line (no newline) or
// a last line that does not verify is cut off, the cut is logged, and the chain continues from
// the last whole, valid line. Damage anywhere else fails Open with a *LineError: an audit log
// is not silently repaired.
//
// # Retention and checkpoints
//
// Records are kept for Retention (default 24 calendar months, the §7101 minimum). Prune cuts
// the expired prefix of the chain (records whose received and responded times are both before
// the cut-off, up to the first one that is not) and writes a checkpoint as the new first line:
//
//	{"v":1,"checkpoint":{"pruned":120,"through":"…","at":"…"},"prev":"<hash of the last pruned record>","hash":"…"}
//
// The checkpoint's hash covers its own fields the same way (prev, then `{"v":1,"checkpoint":{…}}`).
// The first record after it must have prev equal to the checkpoint's prev, so the kept lines
// are copied byte for byte and their hashes, and any head hash an operator wrote down, stay
// valid. Verify accepts a checkpoint only as line 1; editing, removing, inserting or reordering
// any kept line still breaks the chain. Like every unkeyed hash chain, a rewrite of the whole
// file from some line on is only caught against a hash kept elsewhere: record Summary.Head
// (callproof audit verify prints it) outside the data directory from time to time.
//
// # Many nodes
//
// The chain has one writer. With several nodes, each node appends to a shared queue (a Sink:
// sessions/redis XADDs the record's JSON to a Redis Stream), and one node runs Forward, which
// reads the stream with a consumer group (a Source), appends each batch to the Log in one
// commit and acknowledges it only then. Log.Append is idempotent by record id over the last
// DefaultDedupWindow records, and Report counts an id once, so a redelivery after a crash
// between append and acknowledgement does not count twice.
//
// # Report
//
// Report reads a (verified) file and computes, for one calendar year, the §7102 figures per
// request type: received, complied with in whole, in part, denied by basis, and the median and
// mean days to respond.
package audit
