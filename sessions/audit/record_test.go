package audit

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)

// good returns a valid verified record.
func good(id string) Record {
	return Record{ID: id, Received: t0, Request: RequestKnowCategories, Channel: "ivr", Platform: "twilio",
		Call: "CA0123456789abcdef0123456789abcdef", Locale: "en-US", Outcome: OutcomeVerified,
		Responded: t0.Add(3 * time.Minute), Factors: []FactorResult{{"dob", ResultPassed}, {"zip", ResultPassed}},
		JTI: "jti_4f1c2b", Level: "reasonable"}
}

func TestDenialBasis(t *testing.T) {
	for _, tc := range []struct {
		outcome, reason, want, disposition string
	}{
		{OutcomeVerified, "verified", "", DispositionComplied},
		{OutcomeVerified, ReasonExempt, BasisExempt, DispositionDenied},
		{OutcomeVerified, ReasonNotConsumer, BasisNotMadeByConsumer, DispositionDenied},
		{OutcomeOptOutConfirmed, "not_required", "", DispositionComplied},
		{OutcomePartiallyVerified, "verified", BasisNotVerifiable, DispositionCompliedPart},
		{OutcomeNotVerified, "mismatch", BasisNotVerifiable, DispositionDenied},
		{OutcomeNotVerified, "no_input", BasisNotVerifiable, DispositionDenied},
		{OutcomeNotVerified, "declaration_refused", BasisNotVerifiable, DispositionDenied},
		{OutcomeNotVerified, "invalid_input", BasisNotVerifiable, DispositionDenied},
		{OutcomeNotVerified, ReasonInvalidPolicy, BasisOther, DispositionDenied},
		{OutcomeNotVerified, ReasonNotConsumer, BasisNotMadeByConsumer, DispositionDenied},
		{OutcomeLockedOut, "locked_out", BasisNotVerifiable, DispositionDenied},
		{OutcomeTechnicalDifficulty, "technical_difficulty", BasisOther, DispositionDenied},
		{OutcomeHangup, "hangup", "", DispositionNoResponse},
		{OutcomeHangup, ReasonExempt, "", DispositionNoResponse},
		{"something_new", "", BasisOther, DispositionDenied},
	} {
		got := DenialBasis(tc.outcome, tc.reason)
		if got != tc.want {
			t.Errorf("DenialBasis(%q, %q) = %q, want %q", tc.outcome, tc.reason, got, tc.want)
		}
		if d := Disposition(tc.outcome, got); d != tc.disposition {
			t.Errorf("Disposition(%q, %q) = %q, want %q", tc.outcome, got, d, tc.disposition)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Record)
		field string // "" = valid
	}{
		{"valid", func(*Record) {}, ""},
		{"hangup without response", func(r *Record) { r.Outcome, r.Responded, r.JTI, r.Level = OutcomeHangup, time.Time{}, "", "" }, ""},
		{"no request chosen", func(r *Record) { r.Request, r.Outcome, r.Responded = "", OutcomeHangup, time.Time{} }, ""},
		{"sip call id", func(r *Record) { r.Call = "a84b4c76e66710@pc33.atlanta.example" }, ""},
		{"sip call id with quotes", func(r *Record) { r.Call = `"a\\b"@host` }, ""},
		{"uuid call id", func(r *Record) { r.Call = "4f0c7c8e-8d8e-4c1e-9a31-7f3d2e1b0a99" }, ""},
		{"bad id prefix", func(r *Record) { r.ID = "x_1" }, "id"},
		{"empty id suffix", func(r *Record) { r.ID = "req_" }, "id"},
		{"id with dot", func(r *Record) { r.ID = "req_a.b" }, "id"},
		{"no received", func(r *Record) { r.Received = time.Time{} }, "received"},
		{"request digits", func(r *Record) { r.Request = "1234" }, "request"},
		{"no platform", func(r *Record) { r.Platform = "" }, "platform"},
		{"no call", func(r *Record) { r.Call = "" }, "call"},
		{"call with space", func(r *Record) { r.Call = "a b" }, "call"},
		{"call is e164", func(r *Record) { r.Call = "+14155550100" }, "call"},
		{"call is national number", func(r *Record) { r.Call = "4155550100" }, "call"},
		{"call is tel uri", func(r *Record) { r.Call = "tel:+14155550100" }, "call"},
		{"call embeds number", func(r *Record) { r.Call = "call-+14155550100-x" }, "call"},
		{"bad locale", func(r *Record) { r.Locale = "en_US" }, "locale"},
		{"unknown outcome", func(r *Record) { r.Outcome = "maybe" }, "outcome"},
		{"no responded", func(r *Record) { r.Responded = time.Time{} }, "responded"},
		{"responded early", func(r *Record) { r.Responded = r.Received.Add(-time.Second) }, "responded"},
		{"unknown basis", func(r *Record) { r.DenialBasis = "fraud" }, "denial_basis"},
		{"denied without basis", func(r *Record) { r.Outcome = OutcomeNotVerified }, "denial_basis"},
		{"partial without basis", func(r *Record) { r.Outcome = OutcomePartiallyVerified }, "denial_basis"},
		{"hangup with basis", func(r *Record) { r.Outcome, r.DenialBasis = OutcomeHangup, BasisOther }, "denial_basis"},
		{"jwt as jti", func(r *Record) { r.JTI = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln" }, "jti"},
		{"too many factors", func(r *Record) { r.Factors = make([]FactorResult, MaxFactors+1) }, "factors"},
		{"factor value", func(r *Record) { r.Factors = []FactorResult{{"94107", ResultPassed}} }, "factors"},
		{"factor result", func(r *Record) { r.Factors = []FactorResult{{"zip", "94107"}} }, "factors"},
		{"level", func(r *Record) { r.Level = "High" }, "level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good("req_1")
			tc.edit(&r)
			err := r.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate = %v, want ErrInvalidRecord naming %s", err, tc.field)
			}
			for _, secret := range []string{"4155550100", "94107", "eyJ"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q repeats the value", err)
				}
			}
		})
	}
}

func TestRecordJSON(t *testing.T) {
	r := good("req_json")
	r.Received = r.Received.In(time.FixedZone("PDT", -7*3600))
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"id":"req_json","received":"2025-03-01T09:30:00Z","request":"know_categories","channel":"ivr",` +
		`"platform":"twilio","call":"CA0123456789abcdef0123456789abcdef","locale":"en-US","outcome":"verified",` +
		`"responded":"2025-03-01T09:33:00Z","denial_basis":"","declaration":false,"factors":[{"name":"dob","result":"passed"},` +
		`{"name":"zip","result":"passed"}],"jti":"jti_4f1c2b","agent":false,"level":"reasonable"}`
	if string(b) != want {
		t.Fatalf("MarshalJSON:\n got %s\nwant %s", b, want)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Received.Equal(r.Received) || back.ID != r.ID || len(back.Factors) != 2 {
		t.Fatalf("round trip: %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"v":1,"id":"req_x","ssn":"6789"}`), &back); !errors.Is(err, ErrBadJSON) {
		t.Fatalf("unknown field: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"v":2,"id":"req_x"}`), &back); !errors.Is(err, ErrBadJSON) {
		t.Fatalf("version 2: %v", err)
	}
}

func TestParseRetention(t *testing.T) {
	now := time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in     string
		cutoff time.Time
		ok     bool
	}{
		{"24mo", time.Date(2024, 2, 28, 12, 0, 0, 0, time.UTC), true},
		{"3y", time.Date(2023, 2, 28, 12, 0, 0, 0, time.UTC), true},
		{"17544h", now.Add(-17544 * time.Hour), true},
		{"23mo", time.Time{}, false},
		{"720h", time.Time{}, false},
		{"1y", time.Time{}, false},
		{"forever", time.Time{}, false},
		{"-24mo", time.Time{}, false},
	} {
		r, err := ParseRetention(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseRetention(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && !r.Cutoff(now).Equal(tc.cutoff) {
			t.Errorf("ParseRetention(%q).Cutoff = %v, want %v", tc.in, r.Cutoff(now), tc.cutoff)
		}
		if !tc.ok && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseRetention(%q) = %v, want ErrInvalidConfig", tc.in, err)
		}
	}
}
