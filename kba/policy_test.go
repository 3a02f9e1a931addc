package kba_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/callproof/callproof/kba"
)

func TestParseRequest(t *testing.T) {
	for _, r := range kba.Requests() {
		got, err := kba.ParseRequest(string(r))
		if err != nil || got != r {
			t.Errorf("ParseRequest(%s) = %q, %v", r, got, err)
		}
	}
	if got, err := kba.ParseRequest("  Know_Specific "); err != nil || got != kba.RequestKnowSpecific {
		t.Errorf("case and space not ignored: %q, %v", got, err)
	}
	for _, s := range []string{"", "know", "opt-out", "delete_everything"} {
		if _, err := kba.ParseRequest(s); !errors.Is(err, kba.ErrUnknownRequest) {
			t.Errorf("ParseRequest(%q) err = %v, want ErrUnknownRequest", s, err)
		}
	}
}

func TestLevel(t *testing.T) {
	tests := []struct {
		l     kba.Level
		acr   string
		valid bool
	}{
		{kba.LevelNone, "urn:callproof:ccpa:none", true},
		{kba.LevelReasonable, "urn:callproof:ccpa:reasonable", true},
		{kba.LevelReasonablyHigh, "urn:callproof:ccpa:reasonably-high", true},
		{"high", "urn:callproof:ccpa:none", false},
		{"", "urn:callproof:ccpa:none", false},
	}
	for _, tt := range tests {
		if got := tt.l.ACR(); got != tt.acr || tt.l.Valid() != tt.valid {
			t.Errorf("Level(%q): ACR %s, Valid %v", tt.l, got, tt.l.Valid())
		}
	}
	if !kba.LevelReasonablyHigh.AtLeast(kba.LevelReasonable) || kba.LevelReasonable.AtLeast(kba.LevelReasonablyHigh) ||
		kba.Level("bogus").AtLeast(kba.LevelNone) {
		t.Error("AtLeast order wrong")
	}
}

func TestDefaultPolicies(t *testing.T) {
	ps := kba.DefaultPolicies()
	if err := ps.Validate(); err != nil {
		t.Fatalf("default policies invalid: %v", err)
	}
	want := []struct {
		r           kba.Request
		level       kba.Level
		verify      bool
		points      int
		declaration bool
		section     string
	}{
		{kba.RequestKnowCategories, kba.LevelReasonable, true, 2, false, "§7062(b)"},
		{kba.RequestKnowSpecific, kba.LevelReasonablyHigh, true, 3, true, "§7062(c)"},
		{kba.RequestDelete, kba.LevelReasonable, true, 2, false, "§7062(d)"},
		{kba.RequestCorrect, kba.LevelReasonable, true, 2, false, "§7062(d), §7060(h)"},
		{kba.RequestOptOut, kba.LevelNone, false, 0, false, "§7060(b)"},
		{kba.RequestLimit, kba.LevelNone, false, 0, false, "§7060(b)"},
		{kba.RequestAccountService, kba.LevelReasonable, true, 2, false, "not CCPA"},
	}
	for _, w := range want {
		p, err := ps.For(w.r)
		if err != nil {
			t.Fatalf("For(%s): %v", w.r, err)
		}
		if p.Request != w.r || p.Level != w.level || p.Verify != w.verify || p.Points != w.points || p.Declaration != w.declaration {
			t.Errorf("%s (%s): %+v", w.r, w.section, p)
		}
		if w.verify && !slices.Equal(p.Factors[:3], []kba.Factor{kba.FactorDOB, kba.FactorZip, kba.FactorSSNLast4}) {
			t.Errorf("%s asks %v first, want dob, zip, ssn_last4", w.r, p.Factors)
		}
		if !w.verify && len(p.Factors) != 0 {
			t.Errorf("%s lists factors for an unverified request", w.r)
		}
	}
	// For hands out copies; DefaultPolicies a fresh table.
	p, _ := ps.For(kba.RequestDelete)
	p.Factors[0] = kba.FactorOTP
	if q, _ := ps.For(kba.RequestDelete); q.Factors[0] != kba.FactorDOB {
		t.Error("For shares the factor slice")
	}
	if _, err := ps.For("refund"); !errors.Is(err, kba.ErrUnknownRequest) {
		t.Errorf("For(refund) err = %v", err)
	}
}

// edit1 returns a change that edits one request's policy in place.
func edit1(r kba.Request, f func(*kba.Policy)) func(kba.Policies) {
	return func(ps kba.Policies) {
		p := ps[r]
		f(&p)
		ps[r] = p
	}
}

func TestPoliciesValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(kba.Policies)
		want   string
	}{
		{"missing request", func(ps kba.Policies) { delete(ps, kba.RequestLimit) }, "limit: no policy"},
		{"unknown request key", func(ps kba.Policies) { ps["refund"] = kba.Policy{Request: "refund"} }, "refund: not a request type"},
		{"request mismatch", edit1(kba.RequestDelete, func(p *kba.Policy) { p.Request = kba.RequestCorrect }), "delete: policy names request"},
		{"opt-out verified (§7060(b))", edit1(kba.RequestOptOut, func(p *kba.Policy) {
			*p = kba.DefaultPolicies()[kba.RequestKnowCategories]
			p.Request = kba.RequestOptOut
		}), "must not be verified (§7060(b))"},
		{"limit with points", edit1(kba.RequestLimit, func(p *kba.Policy) { p.Points = 1 }), "limit: an unverified request has level none"},
		{"delete unverified (§7060(a))", edit1(kba.RequestDelete, func(p *kba.Policy) { *p = kba.Policy{Request: kba.RequestDelete, Level: kba.LevelNone} }), "delete: must be verified"},
		{"points exceed factors", edit1(kba.RequestDelete, func(p *kba.Policy) { p.Factors = p.Factors[:1] }), "delete: points 2 exceed the 1 factors"},
		{"zero points", edit1(kba.RequestDelete, func(p *kba.Policy) { p.Points = 0 }), "at least 1 point"},
		{"unknown factor", edit1(kba.RequestDelete, func(p *kba.Policy) { p.Factors = []kba.Factor{"dob", "mothers_maiden_name"} }), `unknown factor "mothers_maiden_name"`},
		{"duplicate factor", edit1(kba.RequestDelete, func(p *kba.Policy) { p.Factors = []kba.Factor{"dob", "dob"} }), "factor dob listed twice"},
		{"unknown level", edit1(kba.RequestDelete, func(p *kba.Policy) { p.Level = "high" }), `unknown level "high"`},
		{"verified at level none", edit1(kba.RequestDelete, func(p *kba.Policy) { p.Level = kba.LevelNone }), "needs level reasonable"},
		{"reasonable with 1 point (§7062(b))", edit1(kba.RequestKnowCategories, func(p *kba.Policy) { p.Points = 1 }), "reasonable needs at least 2 points"},
		{"reasonably-high with 2 points (§7062(c))", edit1(kba.RequestDelete, func(p *kba.Policy) { p.Level = kba.LevelReasonablyHigh }), "reasonably-high needs at least 3 points"},
		{"know_specific without declaration (§7062(c))", edit1(kba.RequestKnowSpecific, func(p *kba.Policy) { p.Declaration = false }),
			"know_specific: specific pieces need reasonably-high and a signed declaration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := kba.DefaultPolicies()
			tt.change(ps)
			err := ps.Validate()
			if err == nil || !errors.Is(err, kba.ErrInvalidPolicy) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want ErrInvalidPolicy containing %q", err, tt.want)
			}
		})
	}
	// A reasonably-high delete with 3 points is a valid operator choice (§7062(d)).
	ps := kba.DefaultPolicies()
	p := ps[kba.RequestDelete]
	p.Level, p.Points = kba.LevelReasonablyHigh, 3
	ps[kba.RequestDelete] = p
	if err := ps.Validate(); err != nil {
		t.Errorf("reasonably-high delete rejected: %v", err)
	}
}

// TestDecide is the policy matrix: each row names the rule of 11 CCR it follows.
func TestDecide(t *testing.T) {
	ps := kba.DefaultPolicies()
	const (
		dob, zip, ssn, pin, pay, otp = kba.FactorDOB, kba.FactorZip, kba.FactorSSNLast4, kba.FactorPIN, kba.FactorLastPayment, kba.FactorOTP
	)
	type res = map[kba.Factor]bool
	tests := []struct {
		rule        string
		r           kba.Request
		results     res
		declaration bool
		verified    bool
		level       kba.Level
		reason      string
		passed      []kba.Factor
		failed      []kba.Factor
	}{
		{"§7062(b) categories: two matching points", kba.RequestKnowCategories, res{dob: true, zip: true}, false, true, kba.LevelReasonable, "verified", []kba.Factor{dob, zip}, nil},
		{"§7062(b) categories: one point is not enough", kba.RequestKnowCategories, res{dob: true}, false, false, kba.LevelNone, "no_input", []kba.Factor{dob}, nil},
		{"§7062(b) categories: a mismatch denies", kba.RequestKnowCategories, res{dob: true, zip: false}, false, false, kba.LevelNone, "mismatch", []kba.Factor{dob}, []kba.Factor{zip}},
		{"§7062(b) categories: nothing answered", kba.RequestKnowCategories, res{}, false, false, kba.LevelNone, "no_input", nil, nil},
		{"§7062(b) categories: nil results", kba.RequestKnowCategories, nil, true, false, kba.LevelNone, "no_input", nil, nil},
		{"§7062(b) categories: a declaration is not asked, so not recorded", kba.RequestKnowCategories, res{dob: true, zip: true}, true, true, kba.LevelReasonable, "verified", []kba.Factor{dob, zip}, nil},
		{"§7062(c) specific: three points and the declaration", kba.RequestKnowSpecific, res{dob: true, zip: true, ssn: true}, true, true, kba.LevelReasonablyHigh, "verified", []kba.Factor{dob, zip, ssn}, nil},
		{"§7062(c) specific: declaration refused", kba.RequestKnowSpecific, res{dob: true, zip: true, ssn: true}, false, false, kba.LevelNone, "declaration_refused", []kba.Factor{dob, zip, ssn}, nil},
		{"§7062(c) specific: two points are not enough", kba.RequestKnowSpecific, res{dob: true, zip: true}, true, false, kba.LevelNone, "no_input", []kba.Factor{dob, zip}, nil},
		{"§7062(c) specific: mismatch outranks a refused declaration", kba.RequestKnowSpecific, res{dob: true, zip: true, ssn: false}, false, false, kba.LevelNone, "mismatch", []kba.Factor{dob, zip}, []kba.Factor{ssn}},
		{"§7062(c) specific: only reliable data points the policy lists count", kba.RequestKnowSpecific, res{dob: true, zip: true, "voiceprint": true}, true, false, kba.LevelNone, "no_input", []kba.Factor{dob, zip, "voiceprint"}, nil},
		{"§7062(d) delete: reasonable with two points", kba.RequestDelete, res{dob: true, zip: true}, false, true, kba.LevelReasonable, "verified", []kba.Factor{dob, zip}, nil},
		{"§7062(d) delete: every factor must pass", kba.RequestDelete, res{dob: false, zip: true, ssn: true}, false, false, kba.LevelNone, "mismatch", []kba.Factor{zip, ssn}, []kba.Factor{dob}},
		{"§7060(h) correct: verified by factors other than the corrected one", kba.RequestCorrect, res{zip: true, ssn: true}, false, true, kba.LevelReasonable, "verified", []kba.Factor{zip, ssn}, nil},
		{"§7060(h) correct: pin and last payment stand in", kba.RequestCorrect, res{pin: true, pay: true}, false, true, kba.LevelReasonable, "verified", []kba.Factor{pin, pay}, nil},
		{"§7060(b) opt-out: never verified, nothing asked", kba.RequestOptOut, nil, false, false, kba.LevelNone, "not_required", nil, nil},
		{"§7060(b) opt-out: answers are ignored", kba.RequestOptOut, res{dob: true, zip: true}, true, false, kba.LevelNone, "not_required", nil, nil},
		{"§7060(b) limit: never verified", kba.RequestLimit, nil, false, false, kba.LevelNone, "not_required", nil, nil},
		{"§7060(f) fail closed: a failed factor the policy does not list still fails", kba.RequestKnowCategories, res{dob: true, zip: true, otp: false}, false, false, kba.LevelNone, "mismatch", []kba.Factor{dob, zip}, []kba.Factor{otp}},
		{"account service: ordinary account call, two points", kba.RequestAccountService, res{dob: true, zip: true}, false, true, kba.LevelReasonable, "verified", []kba.Factor{dob, zip}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			p, err := ps.For(tt.r)
			if err != nil {
				t.Fatal(err)
			}
			out := kba.Decide(p, tt.results, tt.declaration)
			if out.Verified != tt.verified || out.Level != tt.level || out.Reason != tt.reason || out.Request != tt.r {
				t.Errorf("Decide = verified %v level %s reason %s request %s; want %v %s %s %s",
					out.Verified, out.Level, out.Reason, out.Request, tt.verified, tt.level, tt.reason, tt.r)
			}
			if !slices.Equal(out.Passed, tt.passed) || !slices.Equal(out.Failed, tt.failed) {
				t.Errorf("passed %v failed %v; want %v %v", out.Passed, out.Failed, tt.passed, tt.failed)
			}
			if out.Declaration != (p.Declaration && tt.declaration && p.Verify) {
				t.Errorf("Declaration = %v", out.Declaration)
			}
			if out.Downgraded {
				t.Error("Decide set Downgraded")
			}
		})
	}
}

func TestDecideInvalidPolicy(t *testing.T) {
	for _, p := range []kba.Policy{
		{Request: kba.RequestDelete, Verify: true, Level: kba.LevelReasonable, Points: 0, Factors: []kba.Factor{"dob"}},
		{Request: kba.RequestDelete, Verify: true, Level: kba.LevelNone, Points: 1, Factors: []kba.Factor{"dob"}},
		{Request: kba.RequestDelete, Verify: true, Level: "high", Points: 1, Factors: []kba.Factor{"dob"}},
	} {
		out := kba.Decide(p, map[kba.Factor]bool{kba.FactorDOB: true}, true)
		if out.Verified || out.Reason != kba.ReasonInvalidPolicy || out.Level != kba.LevelNone {
			t.Errorf("Decide(%+v) = %+v, want invalid_policy", p, out)
		}
	}
}

// TestFallback follows §7024(a): an unverifiable specific-pieces request is handled as a
// categories request.
func TestFallback(t *testing.T) {
	ps := kba.DefaultPolicies()
	ks, _ := ps.For(kba.RequestKnowSpecific)
	type res = map[kba.Factor]bool
	tests := []struct {
		name        string
		in          kba.Outcome
		ok          bool
		wantPassed  []kba.Factor
		wantFailed  []kba.Factor
		declaration bool
	}{
		{"declaration refused, three points: categories", kba.Decide(ks, res{"dob": true, "zip": true, "ssn_last4": true}, false), true,
			[]kba.Factor{"dob", "zip", "ssn_last4"}, nil, false},
		{"third factor failed, two passed: categories", kba.Decide(ks, res{"dob": true, "zip": true, "ssn_last4": false}, true), true,
			[]kba.Factor{"dob", "zip"}, []kba.Factor{"ssn_last4"}, false},
		{"only one passed: no fallback", kba.Decide(ks, res{"dob": true, "zip": false, "ssn_last4": false}, true), false, nil, nil, false},
		{"nothing answered: no fallback", kba.Decide(ks, nil, true), false, nil, nil, false},
		{"verified specific: nothing to fall back from", kba.Decide(ks, res{"dob": true, "zip": true, "ssn_last4": true}, true), false, nil, nil, false},
		{"failed delete: not know_specific", kba.Decide(ps[kba.RequestDelete], res{"dob": true, "zip": false}, false), false, nil, nil, false},
		{"locked out: no fallback", kba.Outcome{Request: kba.RequestKnowSpecific, Reason: kba.ReasonLockedOut, Passed: []kba.Factor{"dob", "zip"}, Level: kba.LevelNone}, false, nil, nil, false},
		{"passed factors categories does not list do not count", kba.Outcome{Request: kba.RequestKnowSpecific, Reason: kba.ReasonMismatch,
			Passed: []kba.Factor{"dob", "otp"}, Failed: []kba.Factor{"zip"}, Level: kba.LevelNone}, false, nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, ok := ps.Fallback(tt.in)
			if ok != tt.ok {
				t.Fatalf("Fallback ok = %v, want %v (%+v)", ok, tt.ok, out)
			}
			if !ok {
				if out.Verified != tt.in.Verified || out.Reason != tt.in.Reason {
					t.Errorf("Fallback changed an outcome it did not apply to")
				}
				return
			}
			if !out.Verified || out.Level != kba.LevelReasonable || out.Request != kba.RequestKnowCategories ||
				out.Reason != kba.ReasonVerified || !out.Downgraded || out.Declaration != tt.declaration {
				t.Errorf("Fallback = %+v", out)
			}
			if !slices.Equal(out.Passed, tt.wantPassed) || !slices.Equal(out.Failed, tt.wantFailed) {
				t.Errorf("passed %v failed %v; want %v %v", out.Passed, out.Failed, tt.wantPassed, tt.wantFailed)
			}
			if out.Level.ACR() != "urn:callproof:ccpa:reasonable" {
				t.Errorf("ACR %s", out.Level.ACR())
			}
		})
	}
	// No know_categories policy: nothing to fall back to.
	delete(ps, kba.RequestKnowCategories)
	if _, ok := ps.Fallback(tests[0].in); ok {
		t.Error("Fallback without a know_categories policy")
	}
}

func TestExcluding(t *testing.T) {
	ps := kba.DefaultPolicies()
	correct, _ := ps.For(kba.RequestCorrect)
	drop, _ := kba.FactorsForField("dob")
	p, err := correct.Excluding(drop...)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(p.Factors, kba.FactorDOB) || !slices.Equal(p.Asked(), []kba.Factor{kba.FactorZip, kba.FactorSSNLast4}) {
		t.Errorf("correcting dob asks %v", p.Asked())
	}
	if !slices.Contains(correct.Factors, kba.FactorDOB) {
		t.Error("Excluding changed the original policy")
	}
	// Correcting every stored data point leaves nothing to verify with.
	if _, err := correct.Excluding(kba.FactorDOB, kba.FactorZip, kba.FactorSSNLast4, kba.FactorPIN); !errors.Is(err, kba.ErrInvalidPolicy) {
		t.Errorf("Excluding too many: err = %v", err)
	}
	if got := (kba.Policy{Points: 3, Factors: []kba.Factor{"dob"}}).Asked(); got != nil {
		t.Errorf("Asked of an impossible policy = %v", got)
	}
}
