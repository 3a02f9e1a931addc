package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Outcomes a Record carries: ivr's final prompt ids, partially_verified for the §7024(a)
// fallback, and hangup when the caller left before any outcome.
const (
	OutcomeVerified            = "verified"
	OutcomePartiallyVerified   = "partially_verified"
	OutcomeNotVerified         = "not_verified"
	OutcomeLockedOut           = "locked_out"
	OutcomeOptOutConfirmed     = "opt_out_confirmed"
	OutcomeTechnicalDifficulty = "technical_difficulty"
	OutcomeHangup              = "hangup"
)

// Denial bases: the four reasons §7102(a) lets a business break its denials down by
// (verification.md §1.8): the request could not be verified, was not made by a consumer,
// sought information that is exempt, or was denied for another reason.
const (
	BasisNotVerifiable     = "not_verifiable"
	BasisNotMadeByConsumer = "not_made_by_consumer"
	BasisExempt            = "exempt"
	BasisOther             = "other"
)

// Request kinds, as kba names them. The first six are CCPA requests and have a row in the
// §7102 report (know_categories and know_specific also add up to a "know" row); any other
// request (account_service) is recorded but not reported.
const (
	RequestKnowCategories = "know_categories"
	RequestKnowSpecific   = "know_specific"
	RequestDelete         = "delete"
	RequestCorrect        = "correct"
	RequestOptOut         = "opt_out"
	RequestLimit          = "limit"
)

// Reasons, beyond kba's, that DenialBasis maps to the buckets other than not_verifiable.
// They are reserved for the authorized-agent path and for records a back office appends.
const (
	// ReasonNotConsumer: the requestor is not the consumer and showed no authority
	// (e.g. an authorized agent without the consumer's signed permission, §7063).
	ReasonNotConsumer = "not_consumer"
	// ReasonExempt: the request sought information the CCPA exempts.
	ReasonExempt = "exempt"
	// ReasonInvalidPolicy is kba's reason for a policy that can verify nobody: our fault.
	ReasonInvalidPolicy = "invalid_policy"
)

// Factor results.
const (
	ResultPassed = "passed"
	ResultFailed = "failed"
)

// Genesis is the prev of the first line of a fresh file.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Limits Validate enforces.
const (
	MaxFactors = 16
	maxIDLen   = 68 // "req_" + 64
	maxCallLen = 128
	maxJTILen  = 128
	maxNameLen = 32
)

// FactorResult is one factor asked and how it went. Name is the factor's id (dob, zip, otp,
// ...), never the value keyed.
type FactorResult struct {
	Name   string `json:"name"`
	Result string `json:"result"` // passed or failed
}

// Record is the §7101 record of one consumer request. It has no field for what the caller
// keyed, the calling number or the token, and Validate refuses values that look like them.
type Record struct {
	// ID is the request id, "req_" + 1 to 64 of [A-Za-z0-9_-]; the token's request_id claim.
	ID string
	// Received is when the request was received (the call started). Required.
	Received time.Time
	// Request is the request kind (know_categories, know_specific, delete, correct, opt_out,
	// limit, account_service); "" when the caller left before choosing.
	Request string
	// Channel is the manner in which the request was made; Append fills "ivr" when empty.
	Channel string
	// Platform is the telephony platform or transport: twilio, telnyx, sip, webrtc, ...
	Platform string
	// Call is the platform's call id. Required; never a phone number.
	Call string
	// Locale is the language the caller used (en-US, es-US).
	Locale string
	// Outcome is one of the Outcome constants.
	Outcome string
	// Responded is when the response was given (the outcome was told). Required unless the
	// outcome is hangup; not before Received.
	Responded time.Time
	// DenialBasis is one of the Basis constants when the request was denied in whole or in
	// part, "" otherwise; DenialBasis(outcome, reason) computes it.
	DenialBasis string
	// Declaration is true when the caller affirmed the §7062(c) declaration.
	Declaration bool
	// Factors are the factors asked, in order, with their results.
	Factors []FactorResult
	// JTI is the issued token's id, when a token was issued.
	JTI string
	// Agent is true when the caller said they act for the consumer (an authorized agent).
	Agent bool
	// Level is the verification level reached: none, reasonable, reasonably-high.
	Level string
}

// DenialBasis maps a call's outcome and reason (kba's Reason constants, or the ones above)
// to the record's §7102 denial basis:
//
//   - verified, opt_out_confirmed: "" (complied), unless the reason is exempt or not_consumer
//     (a verified request denied afterwards).
//   - partially_verified: not_verifiable. A know_specific request verified only to the
//     categories level is complied with in part; the specific pieces are denied because
//     identity was not verified to the reasonably-high degree (§7024(a)).
//   - not_verified, locked_out: not_verifiable (mismatch, no_input, declaration_refused,
//     invalid_input, locked_out all mean identity was not verified); exempt and not_consumer
//     map to their buckets; invalid_policy (a policy that can verify nobody) to other.
//   - technical_difficulty: other. We failed to respond; the conservative reading counts it
//     as a denial rather than hiding it.
//   - hangup: "". The caller left before any response: no denial, no compliance.
//   - anything else: other.
func DenialBasis(outcome, reason string) string {
	if outcome == OutcomeHangup {
		return ""
	}
	switch reason {
	case ReasonExempt:
		return BasisExempt
	case ReasonNotConsumer:
		return BasisNotMadeByConsumer
	}
	switch outcome {
	case OutcomeVerified, OutcomeOptOutConfirmed:
		return ""
	case OutcomePartiallyVerified:
		return BasisNotVerifiable
	case OutcomeNotVerified, OutcomeLockedOut:
		if reason == ReasonInvalidPolicy {
			return BasisOther
		}
		return BasisNotVerifiable
	default:
		return BasisOther
	}
}

// Dispositions: how a record counts in the §7102 report.
const (
	DispositionComplied     = "complied"
	DispositionCompliedPart = "complied_in_part"
	DispositionDenied       = "denied"
	DispositionNoResponse   = "no_response"
)

// Disposition says how a record with this outcome and denial basis counts in the §7102
// report: verified and opt_out_confirmed are complied with in whole (denied if a basis is
// set), partially_verified in part, not_verified, locked_out and technical_difficulty are
// denied, and hangup had no response.
func Disposition(outcome, basis string) string {
	switch outcome {
	case OutcomeHangup:
		return DispositionNoResponse
	case OutcomePartiallyVerified:
		return DispositionCompliedPart
	case OutcomeVerified, OutcomeOptOutConfirmed:
		if basis != "" {
			return DispositionDenied
		}
		return DispositionComplied
	default:
		return DispositionDenied
	}
}

func knownOutcome(o string) bool {
	switch o {
	case OutcomeVerified, OutcomePartiallyVerified, OutcomeNotVerified, OutcomeLockedOut,
		OutcomeOptOutConfirmed, OutcomeTechnicalDifficulty, OutcomeHangup:
		return true
	}
	return false
}

func knownBasis(b string) bool {
	switch b {
	case BasisNotVerifiable, BasisNotMadeByConsumer, BasisExempt, BasisOther:
		return true
	}
	return false
}

// Validate reports the first field that breaks the rules on Record's fields. Messages name
// the field, never its value.
func (r Record) Validate() error {
	bad := func(field, why string) error { return fmt.Errorf("%w: %s %s", ErrInvalidRecord, field, why) }
	switch {
	case !validID(r.ID):
		return bad("id", `must be "req_" followed by 1 to 64 of [A-Za-z0-9_-]`)
	case r.Received.IsZero() || r.Received.UTC().Year() < 1970 || r.Received.UTC().Year() > 9999:
		return bad("received", "must be set (years 1970 to 9999)")
	case r.Request != "" && !isName(r.Request):
		return bad("request", "must be a lower-case name")
	case r.Channel != "" && !isName(r.Channel):
		return bad("channel", "must be a lower-case name")
	case !isName(r.Platform):
		return bad("platform", "must be a lower-case name")
	case !validCall(r.Call):
		return bad("call", "must be 1 to 128 printable ASCII characters without spaces")
	case looksLikePhone(r.Call):
		return bad("call", "looks like a phone number; records never hold one")
	case r.Locale != "" && !validLocale(r.Locale):
		return bad("locale", "must be a language tag such as en-US")
	case !knownOutcome(r.Outcome):
		return bad("outcome", "is not a known outcome")
	case r.Responded.IsZero() && r.Outcome != OutcomeHangup:
		return bad("responded", "must be set unless the outcome is hangup")
	case !r.Responded.IsZero() && r.Responded.Before(r.Received):
		return bad("responded", "is before received")
	case !r.Responded.IsZero() && r.Responded.UTC().Year() > 9999:
		return bad("responded", "is after year 9999")
	case r.DenialBasis != "" && !knownBasis(r.DenialBasis):
		return bad("denial_basis", "is not one of the four §7102 bases")
	case r.Outcome == OutcomeHangup && r.DenialBasis != "":
		return bad("denial_basis", "must be empty when the caller hung up")
	case Disposition(r.Outcome, "") == DispositionDenied && r.DenialBasis == "",
		r.Outcome == OutcomePartiallyVerified && r.DenialBasis == "":
		return bad("denial_basis", "is required for this outcome")
	case len(r.Factors) > MaxFactors:
		return bad("factors", fmt.Sprintf("has more than %d entries", MaxFactors))
	case len(r.JTI) > maxJTILen || !isToken(r.JTI):
		return bad("jti", "must be at most 128 of [A-Za-z0-9_-] (a token id, never the token)")
	case r.Level != "" && !isName(r.Level):
		return bad("level", "must be a lower-case name")
	}
	for _, f := range r.Factors {
		if !isName(f.Name) {
			return bad("factors", "has a name that is not a lower-case factor id")
		}
		if f.Result != ResultPassed && f.Result != ResultFailed {
			return bad("factors", "has a result other than passed or failed")
		}
	}
	return nil
}

func validID(s string) bool {
	rest, ok := strings.CutPrefix(s, "req_")
	return ok && len(s) <= maxIDLen && rest != "" && isToken(rest)
}

// isToken: [A-Za-z0-9_-]*.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// isName: [a-z][a-z0-9_-]{0,31}.
func isName(s string) bool {
	if s == "" || len(s) > maxNameLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validCall(s string) bool {
	if s == "" || len(s) > maxCallLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// looksLikePhone reports a call id that is, or embeds, an E.164-like number: 7 to 15 digits
// with an optional '+' (or tel:/sip: prefix), or a '+' followed by 7 or more digits anywhere.
func looksLikePhone(s string) bool {
	t := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(s, "tel:"), "sip:"), "+")
	if n := digitRun(t); n == len(t) && n >= 7 && n <= 15 {
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '+' && digitRun(s[i+1:]) >= 7 {
			return true
		}
	}
	return false
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// validLocale: a BCP 47-looking tag, letters and digits in subtags of 1 to 8 joined by '-'.
func validLocale(s string) bool {
	if len(s) > 35 {
		return false
	}
	for i, sub := range strings.Split(s, "-") {
		if sub == "" || len(sub) > 8 || (i == 0 && (len(sub) < 2 || len(sub) > 3)) {
			return false
		}
		for j := 0; j < len(sub); j++ {
			c := sub[j]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}

// recordJSON is the canonical encoding; field order is the file format.
type recordJSON struct {
	V           int            `json:"v"`
	ID          string         `json:"id"`
	Received    string         `json:"received"`
	Request     string         `json:"request"`
	Channel     string         `json:"channel"`
	Platform    string         `json:"platform"`
	Call        string         `json:"call"`
	Locale      string         `json:"locale"`
	Outcome     string         `json:"outcome"`
	Responded   string         `json:"responded"`
	DenialBasis string         `json:"denial_basis"`
	Declaration bool           `json:"declaration"`
	Factors     []FactorResult `json:"factors"`
	JTI         string         `json:"jti"`
	Agent       bool           `json:"agent"`
	Level       string         `json:"level"`
}

const formatVersion = 1

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

func (r Record) wire() recordJSON {
	fs := r.Factors
	if fs == nil {
		fs = []FactorResult{}
	}
	return recordJSON{V: formatVersion, ID: r.ID, Received: formatTime(r.Received), Request: r.Request,
		Channel: r.Channel, Platform: r.Platform, Call: r.Call, Locale: r.Locale, Outcome: r.Outcome,
		Responded: formatTime(r.Responded), DenialBasis: r.DenialBasis, Declaration: r.Declaration,
		Factors: fs, JTI: r.JTI, Agent: r.Agent, Level: r.Level}
}

func (w recordJSON) record() (Record, error) {
	if w.V != formatVersion {
		return Record{}, fmt.Errorf("%w: version %d", ErrBadJSON, w.V)
	}
	rec, err := parseTime(w.Received)
	if err != nil {
		return Record{}, fmt.Errorf("%w: received is not an RFC 3339 time", ErrBadJSON)
	}
	resp, err := parseTime(w.Responded)
	if err != nil {
		return Record{}, fmt.Errorf("%w: responded is not an RFC 3339 time", ErrBadJSON)
	}
	var fs []FactorResult
	if len(w.Factors) > 0 {
		fs = w.Factors
	}
	return Record{ID: w.ID, Received: rec, Request: w.Request, Channel: w.Channel, Platform: w.Platform,
		Call: w.Call, Locale: w.Locale, Outcome: w.Outcome, Responded: resp, DenialBasis: w.DenialBasis,
		Declaration: w.Declaration, Factors: fs, JTI: w.JTI, Agent: w.Agent, Level: w.Level}, nil
}

// MarshalJSON writes the record's canonical JSON, the object a log line starts with (without
// prev and hash): {"v":1,"id":…,"received":…,…,"level":…}. Times are UTC RFC 3339.
func (r Record) MarshalJSON() ([]byte, error) { return json.Marshal(r.wire()) }

// UnmarshalJSON reads what MarshalJSON writes; unknown fields are an error.
func (r *Record) UnmarshalJSON(data []byte) error {
	var w recordJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data", ErrBadJSON)
	}
	rec, err := w.record()
	if err != nil {
		return err
	}
	*r = rec
	return nil
}
