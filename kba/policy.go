package kba

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Request is the kind of request a caller makes. The values are stable: stream parameter
// "request", token claim "ccpa_request", audit records.
type Request string

// The request types, in request-menu order (1 to 7).
const (
	RequestKnowCategories Request = "know_categories" // §7024(b): categories of personal information
	RequestKnowSpecific   Request = "know_specific"   // §7024(a): specific pieces
	RequestDelete         Request = "delete"          // §7022
	RequestCorrect        Request = "correct"         // §7023
	RequestOptOut         Request = "opt_out"         // §7026: opt out of sale/sharing
	RequestLimit          Request = "limit"           // §7027: limit use of sensitive PI
	RequestAccountService Request = "account_service" // not a CCPA request: ordinary account service
)

// Requests lists every request type in request-menu order.
func Requests() []Request {
	return []Request{RequestKnowCategories, RequestKnowSpecific, RequestDelete, RequestCorrect,
		RequestOptOut, RequestLimit, RequestAccountService}
}

// ParseRequest parses a request type (case and surrounding space ignored). Anything else,
// including "", gives an error wrapping ErrUnknownRequest.
func ParseRequest(s string) (Request, error) {
	r := Request(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Requests(), r) {
		return r, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownRequest, truncate(s))
}

// Level is the degree of certainty a verification reached, named after the CCPA standards.
type Level string

// The levels, lowest first.
const (
	LevelNone           Level = "none"            // not verified, or not required (§7060(b))
	LevelReasonable     Level = "reasonable"      // "reasonable degree of certainty" (§7062(b))
	LevelReasonablyHigh Level = "reasonably-high" // "reasonably high degree of certainty" (§7062(c))
)

func (l Level) rank() int {
	switch l {
	case LevelNone:
		return 0
	case LevelReasonable:
		return 1
	case LevelReasonablyHigh:
		return 2
	}
	return -1
}

// Valid reports whether l is one of the three levels.
func (l Level) Valid() bool { return l.rank() >= 0 }

// AtLeast reports whether l is m or higher. An invalid level is below everything.
func (l Level) AtLeast(m Level) bool { return l.Valid() && l.rank() >= m.rank() }

// ACR returns the token's "acr" value, "urn:callproof:ccpa:<level>". An invalid level fails
// closed to urn:callproof:ccpa:none.
func (l Level) ACR() string {
	if !l.Valid() {
		l = LevelNone
	}
	return "urn:callproof:ccpa:" + string(l)
}

// Policy says how one request type is verified.
type Policy struct {
	Request Request
	// Level is what a successful verification reaches; LevelNone when Verify is false.
	Level Level
	// Verify is false for requests that must not be verified (opt_out, limit: §7060(b)).
	Verify bool
	// Points is how many distinct factors must be asked and must all pass.
	Points int
	// Declaration requires the caller to affirm, under penalty of perjury, that they are the
	// consumer (§7062(c)); "1" on the declaration prompt.
	Declaration bool
	// Factors is the order factors are asked in; the first Points are asked. Listing more than
	// Points leaves room for Excluding (a correction must not use the field being corrected,
	// §7060(h)).
	Factors []Factor
}

// Excluding returns a copy of p without the given factors, for a request to correct one of them
// (§7060(h); see FactorsForField). It fails with ErrInvalidPolicy when fewer than Points
// factors remain.
func (p Policy) Excluding(fs ...Factor) (Policy, error) {
	q := p
	q.Factors = slices.DeleteFunc(slices.Clone(p.Factors), func(f Factor) bool { return slices.Contains(fs, f) })
	if len(q.Factors) < q.Points {
		return p, fmt.Errorf("%w: %s: %d factors left after exclusions, %d needed", ErrInvalidPolicy, p.Request, len(q.Factors), q.Points)
	}
	return q, nil
}

// Asked returns the factors the flow asks: the first Points of Factors.
func (p Policy) Asked() []Factor {
	if p.Points <= 0 || p.Points > len(p.Factors) {
		return nil
	}
	return slices.Clone(p.Factors[:p.Points])
}

// Policies is the policy table, one entry per request type.
type Policies map[Request]Policy

// DefaultPolicies returns the default table (11 CCR §§7060–7062; see the package doc). Every
// verified request asks dob, zip, ssn_last4 first, then pin and last_payment where more points
// are needed or a correction excludes one of the first three.
func DefaultPolicies() Policies {
	order := func() []Factor {
		return []Factor{FactorDOB, FactorZip, FactorSSNLast4, FactorPIN, FactorLastPayment}
	}
	return Policies{
		RequestKnowCategories: {Request: RequestKnowCategories, Level: LevelReasonable, Verify: true, Points: 2, Factors: order()},
		RequestKnowSpecific:   {Request: RequestKnowSpecific, Level: LevelReasonablyHigh, Verify: true, Points: 3, Declaration: true, Factors: order()},
		RequestDelete:         {Request: RequestDelete, Level: LevelReasonable, Verify: true, Points: 2, Factors: order()},
		RequestCorrect:        {Request: RequestCorrect, Level: LevelReasonable, Verify: true, Points: 2, Factors: order()},
		RequestOptOut:         {Request: RequestOptOut, Level: LevelNone},
		RequestLimit:          {Request: RequestLimit, Level: LevelNone},
		RequestAccountService: {Request: RequestAccountService, Level: LevelReasonable, Verify: true, Points: 2, Factors: order()},
	}
}

// Validate checks the table against the CCPA rules it encodes. Every request type needs a
// policy; opt_out and limit must not verify (§7060(b)); a verified policy needs a level, Points
// from 1 to len(Factors), known and distinct factors; reasonable needs 2 points or more
// (§7062(b)), reasonably-high 3 or more (§7062(c)); know_categories needs at least reasonable,
// know_specific reasonably-high with a declaration (§7062(c)). All problems are reported, each
// wrapping ErrInvalidPolicy.
func (ps Policies) Validate() error {
	var errs []error
	bad := func(r Request, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidPolicy, r, fmt.Sprintf(format, a...)))
	}
	for r := range ps {
		if _, err := ParseRequest(string(r)); err != nil || string(r) != strings.ToLower(string(r)) {
			bad(r, "not a request type")
		}
	}
	for _, r := range Requests() {
		p, ok := ps[r]
		if !ok {
			bad(r, "no policy")
			continue
		}
		if p.Request != r {
			bad(r, "policy names request %q", truncate(string(p.Request)))
		}
		if !p.Level.Valid() {
			bad(r, "unknown level %q", truncate(string(p.Level)))
			continue
		}
		if !p.Verify {
			if r != RequestOptOut && r != RequestLimit {
				bad(r, "must be verified (§7060(a))")
			}
			if p.Level != LevelNone || p.Points != 0 || p.Declaration {
				bad(r, "an unverified request has level none, no points and no declaration")
			}
			continue
		}
		if r == RequestOptOut || r == RequestLimit {
			bad(r, "opt-out and limit requests must not be verified (§7060(b))")
		}
		seen := map[Factor]bool{}
		for _, f := range p.Factors {
			if _, ok := specs[f]; !ok {
				bad(r, "unknown factor %q", truncate(string(f)))
			}
			if seen[f] {
				bad(r, "factor %s listed twice", f)
			}
			seen[f] = true
		}
		switch {
		case p.Points < 1:
			bad(r, "a verified request needs at least 1 point")
		case p.Points > len(p.Factors):
			bad(r, "points %d exceed the %d factors listed", p.Points, len(p.Factors))
		}
		switch p.Level {
		case LevelNone:
			bad(r, "a verified request needs level reasonable or reasonably-high")
		case LevelReasonable:
			if p.Points < 2 {
				bad(r, "reasonable needs at least 2 points (§7062(b))")
			}
		case LevelReasonablyHigh:
			if p.Points < 3 {
				bad(r, "reasonably-high needs at least 3 points (§7062(c))")
			}
		}
		if r == RequestKnowSpecific && (p.Level != LevelReasonablyHigh || !p.Declaration) {
			bad(r, "specific pieces need reasonably-high and a signed declaration (§7062(c))")
		}
	}
	return errors.Join(errs...)
}

// For returns a copy of the policy for request r.
func (ps Policies) For(r Request) (Policy, error) {
	p, ok := ps[r]
	if !ok {
		return Policy{}, fmt.Errorf("%w: no policy for %q", ErrUnknownRequest, truncate(string(r)))
	}
	p.Factors = slices.Clone(p.Factors)
	return p, nil
}

// The stable reasons an Outcome carries: agent messages, audit records and the §7102 denial
// buckets rely on them.
const (
	ReasonVerified           = "verified"            // every asked factor passed (and the declaration was given)
	ReasonMismatch           = "mismatch"            // an asked factor did not match
	ReasonNoInput            = "no_input"            // fewer factors answered than the policy needs
	ReasonDeclarationRefused = "declaration_refused" // factors passed, the required declaration was not given
	ReasonLockedOut          = "locked_out"          // the subject is locked (set by the flow, not by Decide)
	ReasonNotRequired        = "not_required"        // the request must not be verified (§7060(b))
	ReasonInvalidPolicy      = "invalid_policy"      // the policy cannot verify anybody; Validate rejects such tables
)

// Outcome is what a verification came to.
type Outcome struct {
	// Verified is true when the policy was met. It is false for a request that needs no
	// verification (Reason not_required): nobody was verified, and the request goes ahead.
	Verified bool
	// Level is the policy's level when verified, LevelNone otherwise.
	Level Level
	// Passed and Failed are the factors asked, in the policy's order. Names only, never values.
	Passed, Failed []Factor
	// Declaration is true when the policy asked for the declaration and the caller gave it.
	Declaration bool
	// Reason is one of the Reason constants.
	Reason string
	// Request is the request the outcome answers (know_categories after a Fallback).
	Request Request
	// Downgraded is true for the know_categories outcome Fallback made from a failed
	// know_specific one (§7024(a)).
	Downgraded bool
}

// Decide turns the results of the factors asked (factor → matched) and the declaration into an
// outcome. The caller is verified only if every asked factor passed, at least Points distinct
// factors of the policy passed, and, when the policy requires it, the declaration was given.
// Failure is closed: a factor in results that the policy does not list does not count towards
// Points, but it still fails the outcome when it failed. Reasons, in order of precedence:
// not_required, invalid_policy, no_input (nothing answered), mismatch, no_input (too few),
// declaration_refused, verified.
func Decide(p Policy, results map[Factor]bool, declaration bool) Outcome {
	out := Outcome{Level: LevelNone, Request: p.Request, Declaration: p.Declaration && declaration}
	if !p.Verify {
		out.Reason = ReasonNotRequired
		out.Declaration = false
		return out
	}
	out.Passed, out.Failed = split(p.Factors, results)
	counted := 0
	for _, f := range out.Passed {
		if slices.Contains(p.Factors, f) {
			counted++
		}
	}
	switch {
	case p.Points < 1 || !p.Level.AtLeast(LevelReasonable):
		out.Reason = ReasonInvalidPolicy
	case len(results) == 0:
		out.Reason = ReasonNoInput
	case len(out.Failed) > 0:
		out.Reason = ReasonMismatch
	case counted < p.Points:
		out.Reason = ReasonNoInput
	case p.Declaration && !declaration:
		out.Reason = ReasonDeclarationRefused
	default:
		out.Verified, out.Level, out.Reason = true, p.Level, ReasonVerified
	}
	return out
}

// split sorts results into passed and failed factors: the policy's order first, then any other
// factor by name.
func split(order []Factor, results map[Factor]bool) (passed, failed []Factor) {
	keys := make([]Factor, 0, len(results))
	for f := range results {
		keys = append(keys, f)
	}
	slices.SortFunc(keys, func(a, b Factor) int {
		ia, ib := slices.Index(order, a), slices.Index(order, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(string(a), string(b))
	})
	for _, f := range keys {
		if results[f] {
			passed = append(passed, f)
		} else {
			failed = append(failed, f)
		}
	}
	return passed, failed
}

// Fallback applies §7024(a): a request to know specific pieces that could not be verified is
// handled as a request to know categories. Given a failed know_specific outcome, it returns the
// know_categories outcome its passed factors earn under ps[know_categories] (only the factors
// that policy lists count, and at least its Points must have passed), with Downgraded set and
// the original failures kept for the record. ok is false when o is not a failed know_specific
// outcome, was locked out, or the passed factors are not enough.
func (ps Policies) Fallback(o Outcome) (Outcome, bool) {
	if o.Request != RequestKnowSpecific || o.Verified || o.Reason == ReasonLockedOut || o.Reason == ReasonNotRequired {
		return o, false
	}
	kc, ok := ps[RequestKnowCategories]
	if !ok || !kc.Verify {
		return o, false
	}
	results := make(map[Factor]bool, len(o.Passed))
	for _, f := range o.Passed {
		if slices.Contains(kc.Factors, f) {
			results[f] = true
		}
	}
	if len(results) < kc.Points {
		return o, false
	}
	out := Decide(kc, results, o.Declaration)
	if !out.Verified {
		return o, false
	}
	out.Failed = slices.Clone(o.Failed)
	out.Downgraded = true
	return out, true
}
