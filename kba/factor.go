package kba

import (
	"crypto/subtle"
	"fmt"
	"strconv"
	"time"
)

// Factor names a data point a caller proves by keying digits. The values are stable: they are
// the agent's step ids and the token's data_points.
type Factor string

// The factors. Knowledge factors (matched against the directory): dob, zip, ssn_last4,
// last_payment; pin is a memorised secret; otp is possession of a contact on file.
const (
	FactorDOB         Factor = "dob"          // date of birth, keyed MMDDYYYY
	FactorZip         Factor = "zip"          // 5-digit ZIP code
	FactorSSNLast4    Factor = "ssn_last4"    // last 4 digits of the SSN
	FactorPIN         Factor = "pin"          // 4 to 8 digit phone PIN, then '#'
	FactorLastPayment Factor = "last_payment" // last payment in dollars and cents as digits, then '#'
	FactorOTP         Factor = "otp"          // one-time passcode sent to a contact on file, then '#'
	FactorTOTP        Factor = "totp"         // 6-digit code from the customer's authenticator app (RFC 6238)
)

// Factors lists the directory-matched factors and otp, in the default asking order. totp
// (FactorTOTP) is asked only where a policy names it, and checked with MatchTOTP.
func Factors() []Factor {
	return []Factor{FactorDOB, FactorZip, FactorSSNLast4, FactorPIN, FactorLastPayment, FactorOTP}
}

// FactorSpec says how a factor is asked and collected.
type FactorSpec struct {
	ID Factor
	// Prompt is the question's prompt id: "ask_" + the factor.
	Prompt string
	// MinDigits and MaxDigits bound the entry, not counting '#'.
	MinDigits, MaxDigits int
	// Terminator is true when the length varies and the caller ends the entry with '#'.
	Terminator bool
	// AMR is the RFC 8176 method the factor proves: "kba", "pin" or "otp".
	AMR string
}

var specs = map[Factor]FactorSpec{
	FactorDOB:         {ID: FactorDOB, Prompt: "ask_dob", MinDigits: 8, MaxDigits: 8, AMR: amrKBA},
	FactorZip:         {ID: FactorZip, Prompt: "ask_zip", MinDigits: 5, MaxDigits: 5, AMR: amrKBA},
	FactorSSNLast4:    {ID: FactorSSNLast4, Prompt: "ask_ssn_last4", MinDigits: 4, MaxDigits: 4, AMR: amrKBA},
	FactorPIN:         {ID: FactorPIN, Prompt: "ask_pin", MinDigits: 4, MaxDigits: 8, Terminator: true, AMR: amrPIN},
	FactorLastPayment: {ID: FactorLastPayment, Prompt: "ask_last_payment", MinDigits: 1, MaxDigits: 15, Terminator: true, AMR: amrKBA},
	FactorOTP:         {ID: FactorOTP, Prompt: "ask_otp", MinDigits: OTPMinDigits, MaxDigits: OTPMaxDigits, Terminator: true, AMR: amrOTP},
	FactorTOTP:        {ID: FactorTOTP, Prompt: "ask_totp", MinDigits: TOTPDigits, MaxDigits: TOTPDigits, AMR: amrOTP},
}

// Spec returns how factor f is asked, and false for an unknown factor.
func Spec(f Factor) (FactorSpec, bool) {
	s, ok := specs[f]
	return s, ok
}

// Normalize checks a caller's entry for factor f and returns its canonical form, which is what
// Match compares. One trailing '#' is accepted and dropped; everything else must be digits
// within the factor's length. The canonical forms:
//
//   - dob: keyed MMDDYYYY, a real calendar date in 1900..2099, returned as YYYY-MM-DD;
//   - zip, ssn_last4, pin, otp: the digits as keyed (leading zeros count);
//   - last_payment: dollars and cents as digits ("12550" is $125.50; leading zeros allowed),
//     returned as the amount in cents in decimal without leading zeros ("0012550" → "12550").
//
// A malformed entry gives an error wrapping ErrInvalidInput that names the factor and the rule,
// never the digits; an unknown factor gives ErrUnknownFactor. The result is as secret as the
// entry.
func Normalize(f Factor, keyed string) (string, error) {
	s, ok := specs[f]
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownFactor, truncate(string(f)))
	}
	if n := len(keyed); n > 0 && keyed[n-1] == '#' {
		keyed = keyed[:n-1]
	}
	if !digitsBetween(keyed, s.MinDigits, s.MaxDigits) {
		if s.MinDigits == s.MaxDigits {
			return "", fmt.Errorf("%w: %s: want %d digits", ErrInvalidInput, f, s.MinDigits)
		}
		return "", fmt.Errorf("%w: %s: want %d to %d digits", ErrInvalidInput, f, s.MinDigits, s.MaxDigits)
	}
	switch f {
	case FactorDOB:
		mm, dd, yyyy := keyed[0:2], keyed[2:4], keyed[4:8]
		iso := yyyy + "-" + mm + "-" + dd
		if !validISODate(iso) {
			return "", fmt.Errorf("%w: %s: not a calendar date MMDDYYYY between 1900 and 2099", ErrInvalidInput, f)
		}
		return iso, nil
	case FactorLastPayment:
		v, err := strconv.ParseUint(keyed, 10, 64) // at most 15 digits: cannot overflow
		if err != nil {
			return "", fmt.Errorf("%w: %s: not an amount", ErrInvalidInput, f)
		}
		return strconv.FormatUint(v, 10), nil
	}
	return keyed, nil
}

// Match reports whether normalized (a Normalize result for f) matches customer c's record. The
// comparison is constant-time over fixed-size buffers. With c == nil (an unknown account) it
// compares against a dummy record, doing the same work, and reports false. FactorOTP never
// matches here: passcodes are checked against the code that was sent (CheckOTP), not against
// the directory. An unknown factor, or a customer without that data point, does not match.
func Match(c *Customer, f Factor, normalized string) bool {
	known := c != nil
	if !known {
		c = &dummyCustomer
	}
	var stored string
	switch f {
	case FactorDOB:
		stored = c.DOB
	case FactorZip:
		stored = c.Zip
	case FactorSSNLast4:
		stored = c.SSNLast4
	case FactorPIN:
		stored = c.PIN
	case FactorLastPayment:
		if c.LastPaymentCents >= 0 {
			stored = strconv.FormatInt(c.LastPaymentCents, 10)
		}
	default: // otp and unknown factors: compare anyway, never match
		ctEqual(c.PIN, normalized)
		return false
	}
	eq := ctEqual(stored, normalized)
	return eq && known && stored != ""
}

// MatchTOTP reports whether keyed is c's authenticator code for now (±1 step) and which step
// matched; the caller must refuse a step already used (RFC 6238 §5.2). A customer without a
// secret, or c == nil, is checked against a dummy secret, doing the same work, and never
// matches.
func MatchTOTP(c *Customer, keyed string, now time.Time) (step int64, ok bool) {
	var key []byte
	if c != nil && c.TOTPSecret != "" {
		key, _ = c.TOTPKey()
	}
	if len(key) == 0 {
		CheckTOTP(dummyTOTPKey, keyed, now)
		return 0, false
	}
	return CheckTOTP(key, keyed, now)
}

var dummyTOTPKey = []byte("callproof-dummy-totp-key")

// dummyCustomer stands in for an unknown account so that Match does the same work. It never
// matches: Match reports false whenever it compared against it.
var dummyCustomer = Customer{DOB: "1900-01-01", Zip: "00000", SSNLast4: "0000", PIN: "00000000", LastPaymentCents: 0}

// ctBuf is the fixed size of the buffers ctEqual compares; longer than any canonical answer.
const ctBuf = 32

// ctEqual compares a and b in time that depends on neither value: both are copied into
// fixed-size buffers and compared whole, and the lengths are compared in constant time too.
// Values longer than ctBuf never match.
func ctEqual(a, b string) bool {
	var x, y [ctBuf]byte
	copy(x[:], a)
	copy(y[:], b)
	same := subtle.ConstantTimeCompare(x[:], y[:]) & subtle.ConstantTimeEq(int32(len(a)), int32(len(b)))
	return same == 1 && len(a) <= ctBuf && len(b) <= ctBuf
}

// AnswerDigits returns what a caller who knows c's record keys for f, without the '#': MMDDYYYY
// for dob, the amount in cents with at least three digits for last_payment ("005" is $0.05),
// the stored digits otherwise. It is for simulated callers and tests; it returns "" for otp
// (nobody knows a passcode before it is sent), an unknown factor, or c == nil.
func AnswerDigits(c *Customer, f Factor) string {
	if c == nil {
		return ""
	}
	switch f {
	case FactorDOB:
		if !validISODate(c.DOB) {
			return ""
		}
		return c.DOB[5:7] + c.DOB[8:10] + c.DOB[0:4]
	case FactorZip:
		return c.Zip
	case FactorSSNLast4:
		return c.SSNLast4
	case FactorPIN:
		return c.PIN
	case FactorLastPayment:
		if c.LastPaymentCents < 0 {
			return ""
		}
		return fmt.Sprintf("%03d", c.LastPaymentCents)
	}
	return ""
}

// FactorsForField returns the factors that must not verify a request to correct the directory
// field named (its YAML name), per §7060(h): correcting the date of birth rules out dob,
// correcting the phones or emails on file rules out otp (the passcode would go to the disputed
// contact), and so on. ok is false for a field kba does not know. Use the result with
// Policy.Excluding.
func FactorsForField(field string) (factors []Factor, ok bool) {
	switch field {
	case "dob":
		return []Factor{FactorDOB}, true
	case "zip":
		return []Factor{FactorZip}, true
	case "ssn_last4":
		return []Factor{FactorSSNLast4}, true
	case "pin":
		return []Factor{FactorPIN}, true
	case "last_payment_cents":
		return []Factor{FactorLastPayment}, true
	case "phones", "emails":
		return []Factor{FactorOTP}, true
	case "totp_secret":
		return []Factor{FactorTOTP}, true
	case "name", "locale", "account":
		return nil, true
	}
	return nil, false
}

// validISODate reports whether s is YYYY-MM-DD, a real calendar date in 1900..2099.
func validISODate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' ||
		!digitsBetween(s[0:4], 4, 4) || !digitsBetween(s[5:7], 2, 2) || !digitsBetween(s[8:10], 2, 2) {
		return false
	}
	y, _ := strconv.Atoi(s[0:4])
	m, _ := strconv.Atoi(s[5:7])
	d, _ := strconv.Atoi(s[8:10])
	if y < 1900 || y > 2099 || m < 1 || m > 12 || d < 1 {
		return false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	return t.Year() == y && t.Month() == time.Month(m) && t.Day() == d
}

// truncate shortens a peer-supplied label before it goes into an error.
func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
