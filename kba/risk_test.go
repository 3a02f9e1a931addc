package kba

import (
	"slices"
	"testing"
)

func TestNormalizeVerstat(t *testing.T) {
	for in, want := range map[string]string{
		"TN-Validation-Passed-A": VerstatA, "TN-Validation-Passed-B": VerstatB, "TN-Validation-Passed-C": VerstatC,
		"TN-Validation-Failed-A": VerstatFailed, "TN-Validation-Failed": VerstatFailed, "No-TN-Validation": VerstatNone,
		"": VerstatNone, "A": VerstatA, "c": VerstatC, "garbage": VerstatNone,
	} {
		if got := NormalizeVerstat(in); got != want {
			t.Errorf("NormalizeVerstat(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRiskAssess(t *testing.T) {
	p := DefaultRisk()
	cases := []struct {
		name    string
		s       RiskSignals
		stepUp  bool
		reasons []string
	}{
		{"number on file, full attestation", RiskSignals{ANIMatch: true, Verstat: VerstatA}, false, nil},
		{"number on file never lowers the bar", RiskSignals{ANIMatch: true, Verstat: VerstatNone}, true, []string{"unattested_number"}},
		{"other number, full attestation", RiskSignals{Verstat: VerstatA}, false, nil},
		{"other number, partial attestation", RiskSignals{Verstat: VerstatB}, false, nil},
		{"other number, gateway attestation", RiskSignals{Verstat: VerstatC}, true, []string{"unattested_number"}},
		{"other number, none", RiskSignals{Verstat: VerstatNone}, true, []string{"unattested_number"}},
		{"failed attestation even on file", RiskSignals{ANIMatch: true, Verstat: VerstatFailed}, true, []string{"verstat_failed"}},
		{"recent failure on the account", RiskSignals{ANIMatch: true, Verstat: VerstatA, AccountFailures: 1}, true, []string{"account_failures"}},
		{"recent failures from the number", RiskSignals{ANIMatch: true, Verstat: VerstatA, CallerFailures: 2}, true, []string{"caller_failures"}},
	}
	for _, c := range cases {
		up, reasons := p.Assess(c.s)
		if up != c.stepUp || !slices.Equal(reasons, c.reasons) {
			t.Errorf("%s: Assess = %v %v, want %v %v", c.name, up, reasons, c.stepUp, c.reasons)
		}
	}
	if up, _ := (RiskPolicy{}).Assess(RiskSignals{Verstat: VerstatFailed, AccountFailures: 9}); up {
		t.Error("the zero RiskPolicy stepped up")
	}
}

func TestPolicyStepUp(t *testing.T) {
	ps := DefaultPolicies()
	kc, _ := ps.For(RequestKnowCategories)
	up, ok := kc.StepUp()
	if !ok || up.Points != 3 || !slices.Equal(up.Asked(), []Factor{FactorDOB, FactorZip, FactorSSNLast4}) || kc.Points != 2 {
		t.Fatalf("step-up of know_categories: %+v %v (original %d points)", up, ok, kc.Points)
	}
	full := Policy{Request: RequestDelete, Level: LevelReasonable, Verify: true, Points: 2, Factors: []Factor{FactorDOB, FactorZip}}
	if _, ok := full.StepUp(); ok {
		t.Fatal("stepped up with no factor left")
	}
	if _, ok := ps[RequestOptOut].StepUp(); ok {
		t.Fatal("stepped up a request that is never verified")
	}
}
