package kba

import "strings"

// Verstat values as kba sees them: the STIR/SHAKEN attestation a carrier verified for the
// caller's number (ATIS-1000074), normalised from the platform's wording.
const (
	VerstatA      = "A"      // full attestation: the carrier knows the caller may use the number
	VerstatB      = "B"      // partial attestation
	VerstatC      = "C"      // gateway attestation: the carrier only knows where the call entered
	VerstatFailed = "failed" // the signature did not verify
	VerstatNone   = "none"   // no attestation (no SHAKEN, or the platform did not say)
)

// NormalizeVerstat maps a platform's verstat string ("TN-Validation-Passed-A",
// "TN-Validation-Failed-B", "No-TN-Validation", "A", ...) to one of the Verstat constants.
func NormalizeVerstat(raw string) string {
	s := strings.ToLower(strings.TrimSpace(raw))
	switch {
	case s == "":
		return VerstatNone
	case strings.Contains(s, "failed"):
		return VerstatFailed
	case strings.HasPrefix(s, "no-") || s == "none" || strings.Contains(s, "no-tn-validation"):
		return VerstatNone
	}
	switch s[len(s)-1] {
	case 'a':
		return VerstatA
	case 'b':
		return VerstatB
	case 'c':
		return VerstatC
	}
	return VerstatNone
}

// RiskSignals are what the flow knows about a caller before the questions.
type RiskSignals struct {
	// ANIMatch is true when the calling number is one of the phones on file. It is recorded
	// (token, agent) but never lowers the bar: it is false for every unknown account, so a
	// path that depended on it would tell a caller which numbers belong to which accounts.
	ANIMatch bool
	// Verstat is a Verstat constant.
	Verstat string
	// AccountFailures and CallerFailures are recent failed sessions for the account number
	// and for the calling number.
	AccountFailures, CallerFailures int
}

// RiskPolicy decides when a caller must answer one more question than the policy asks
// (step-up). The zero value never steps up; DefaultRisk is what Callproof runs with.
type RiskPolicy struct {
	// StepUpOnFailures steps up after this many recent failed sessions on the account or from
	// the calling number; 0 disables.
	StepUpOnFailures int
	// StepUpVerstats steps up when the attestation is one of these. A failed attestation
	// always steps up when the list is non-empty.
	StepUpVerstats []string
}

// DefaultRisk steps up after one recent failure, and for calls whose number no carrier
// attested fully or partially.
func DefaultRisk() RiskPolicy {
	return RiskPolicy{StepUpOnFailures: 1, StepUpVerstats: []string{VerstatC, VerstatNone, VerstatFailed}}
}

// Assess returns whether the caller must step up and why (stable reason names, for the record
// and the agent).
func (p RiskPolicy) Assess(s RiskSignals) (stepUp bool, reasons []string) {
	if p.StepUpOnFailures > 0 {
		if s.AccountFailures >= p.StepUpOnFailures {
			reasons = append(reasons, "account_failures")
		}
		if s.CallerFailures >= p.StepUpOnFailures {
			reasons = append(reasons, "caller_failures")
		}
	}
	if len(p.StepUpVerstats) > 0 {
		switch {
		case s.Verstat == VerstatFailed:
			reasons = append(reasons, "verstat_failed")
		case containsString(p.StepUpVerstats, s.Verstat):
			reasons = append(reasons, "unattested_number")
		}
	}
	return len(reasons) > 0, reasons
}

// StepUp returns p asking one more factor, when its Factors leave room; ok is false when they
// do not (the policy is then asked as it is).
func (p Policy) StepUp() (Policy, bool) {
	if !p.Verify || p.Points >= len(p.Factors) {
		return p, false
	}
	q := p
	q.Factors = append([]Factor(nil), p.Factors...)
	q.Points++
	return q, true
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
