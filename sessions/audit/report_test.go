package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fixtureRecords is testdata/audit-2025.jsonl: each record with the figures it should add,
// so that the expected report below can be checked by hand.
func fixtureRecords() []Record {
	day := 24 * time.Hour
	at := func(month time.Month, d, h int) time.Time { return time.Date(2025, month, d, h, 0, 0, 0, time.UTC) }
	r := func(id, request, outcome, basis string, received time.Time, took time.Duration) Record {
		rec := Record{ID: id, Received: received, Request: request, Channel: "ivr", Platform: "twilio",
			Call: "CA" + id[4:], Locale: "en-US", Outcome: outcome, DenialBasis: basis}
		if outcome != OutcomeHangup {
			rec.Responded = received.Add(took)
		}
		switch outcome {
		case OutcomeVerified, OutcomePartiallyVerified:
			rec.JTI, rec.Level = "jti_"+id[4:], "reasonable"
			rec.Factors = []FactorResult{{"dob", ResultPassed}, {"zip", ResultPassed}}
		case OutcomeNotVerified:
			rec.Level = "none"
			rec.Factors = []FactorResult{{"dob", ResultPassed}, {"zip", ResultFailed}}
		}
		return rec
	}
	recs := []Record{
		// know_categories: whole 1 (0.25 d), denied not_verifiable 1 (0.5 d), no response 1.
		r("req_kc1", RequestKnowCategories, OutcomeVerified, "", at(1, 10, 10), 6*time.Hour),
		r("req_kc2", RequestKnowCategories, OutcomeNotVerified, BasisNotVerifiable, at(2, 1, 0), 12*time.Hour),
		r("req_kc3", RequestKnowCategories, OutcomeHangup, "", at(2, 2, 0), 0),
		// know_specific: whole 1 (1 d), part 1 (2 d), denied not_verifiable 1 (3 d), other 1 (0.5 d).
		r("req_ks1", RequestKnowSpecific, OutcomeVerified, "", at(3, 1, 0), day),
		r("req_ks2", RequestKnowSpecific, OutcomePartiallyVerified, BasisNotVerifiable, at(3, 2, 0), 2*day),
		r("req_ks3", RequestKnowSpecific, OutcomeLockedOut, BasisNotVerifiable, at(3, 3, 0), 3*day),
		r("req_ks4", RequestKnowSpecific, OutcomeTechnicalDifficulty, BasisOther, at(3, 4, 0), 12*time.Hour),
		// delete: whole 1 (0.25 d), denied not_verifiable 1 (0.75 d), exempt 1 (10 d).
		r("req_d1", RequestDelete, OutcomeVerified, "", at(4, 1, 0), 6*time.Hour),
		r("req_d2", RequestDelete, OutcomeNotVerified, BasisNotVerifiable, at(4, 2, 0), 18*time.Hour),
		r("req_d3", RequestDelete, OutcomeVerified, BasisExempt, at(4, 3, 0), 10*day),
		// correct: whole 1 (1.5 d), denied not_made_by_consumer 1 (4 d, an agent without permission).
		r("req_c1", RequestCorrect, OutcomeVerified, "", at(5, 1, 0), 36*time.Hour),
		r("req_c2", RequestCorrect, OutcomeNotVerified, BasisNotMadeByConsumer, at(5, 2, 0), 4*day),
		// opt_out: whole 2 (0.1 d, 0.3 d); limit: whole 1 (0.2 d).
		r("req_o1", RequestOptOut, OutcomeOptOutConfirmed, "", at(6, 1, 0), 144*time.Minute),
		r("req_o2", RequestOptOut, OutcomeOptOutConfirmed, "", at(6, 2, 0), 432*time.Minute),
		r("req_l1", RequestLimit, OutcomeOptOutConfirmed, "", at(7, 1, 0), 288*time.Minute),
		// Not a CCPA request: other_records 1.
		r("req_a1", "account_service", OutcomeVerified, "", at(8, 1, 0), 5*time.Minute),
		// Outside 2025 (UTC): ignored.
		r("req_y1", RequestKnowCategories, OutcomeVerified, "", time.Date(2024, 12, 31, 23, 0, 0, 0, time.UTC), 2*time.Hour),
		r("req_y2", RequestDelete, OutcomeVerified, "", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Hour),
	}
	recs[11].Agent = true // req_c2: an authorized agent
	dup := recs[7]        // req_d1 again, as a redelivery would write it: duplicates 1.
	return append(recs, dup)
}

func f64(x float64) *float64 { return &x }

// wantReport2025 is computed by hand from the comments above. Medians of an even count are
// the mean of the middle two; know is know_categories + know_specific:
// know days [0.25 0.5 | 1 2 3 0.5] sorted 0.25 0.5 0.5 1 2 3: median 0.75, mean 7.25/6.
var wantReport2025 = CCPAReport{Year: 2025, TimeZone: "UTC", OtherRecords: 1, Duplicates: 1, Requests: []RequestStats{
	{Request: "know", Received: 7, CompliedWhole: 2, CompliedPart: 1, Denied: 3,
		DeniedBy: Denials{NotVerifiable: 2, Other: 1}, NoResponse: 1, Responded: 6, MedianDays: f64(0.75), MeanDays: f64(1.2083)},
	{Request: "know_categories", Received: 3, CompliedWhole: 1, Denied: 1,
		DeniedBy: Denials{NotVerifiable: 1}, NoResponse: 1, Responded: 2, MedianDays: f64(0.375), MeanDays: f64(0.375)},
	{Request: "know_specific", Received: 4, CompliedWhole: 1, CompliedPart: 1, Denied: 2,
		DeniedBy: Denials{NotVerifiable: 1, Other: 1}, Responded: 4, MedianDays: f64(1.5), MeanDays: f64(1.625)},
	{Request: "delete", Received: 3, CompliedWhole: 1, Denied: 2,
		DeniedBy: Denials{NotVerifiable: 1, Exempt: 1}, Responded: 3, MedianDays: f64(0.75), MeanDays: f64(3.6667)},
	{Request: "correct", Received: 2, CompliedWhole: 1, Denied: 1,
		DeniedBy: Denials{NotMadeByConsumer: 1}, Responded: 2, MedianDays: f64(2.75), MeanDays: f64(2.75)},
	{Request: "opt_out", Received: 2, CompliedWhole: 2, Responded: 2, MedianDays: f64(0.2), MeanDays: f64(0.2)},
	{Request: "limit", Received: 1, CompliedWhole: 1, Responded: 1, MedianDays: f64(0.2), MeanDays: f64(0.2)},
}}

const fixture = "testdata/audit-2025.jsonl"

func TestReportFixture(t *testing.T) {
	if *update {
		if err := os.WriteFile(fixture, chainOf(fixtureRecords()...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := Verify(bytes.NewReader(data)); err != nil || n != 19 {
		t.Fatalf("fixture: Verify = %d, %v", n, err)
	}
	rep, err := Report(bytes.NewReader(data), 2025)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(rep, "", "  ")
	want, _ := json.MarshalIndent(wantReport2025, "", "  ")
	if !bytes.Equal(got, want) {
		t.Fatalf("report:\n%s\nwant:\n%s", got, want)
	}
	for _, row := range rep.Requests {
		if row.Received != row.CompliedWhole+row.CompliedPart+row.Denied+row.NoResponse {
			t.Errorf("%s: received %d does not add up", row.Request, row.Received)
		}
		d := row.DeniedBy
		if row.Denied != d.NotVerifiable+d.NotMadeByConsumer+d.Exempt+d.Other {
			t.Errorf("%s: denials by basis do not add up", row.Request)
		}
	}
	golden(t, "testdata/report-2025.json", append(got, '\n'))
	var table bytes.Buffer
	if err := rep.Table(&table); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/report-2025.txt", table.Bytes())
}

func TestReportYearAndZone(t *testing.T) {
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	// 2024 holds req_y1 only; 2026 req_y2 only.
	for year, request := range map[int]string{2024: "know_categories", 2026: "delete"} {
		rep, err := Report(bytes.NewReader(data), year)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, row := range rep.Requests {
			if row.Request == request && row.Received != 1 {
				t.Errorf("%d %s: received %d, want 1", year, request, row.Received)
			}
			if row.Request != "know" {
				total += row.Received
			}
		}
		if total != 1 {
			t.Errorf("%d: %d requests, want 1", year, total)
		}
	}
	// In Los Angeles, 2024-12-31T23:00Z is still 2024, and 2026-01-01T00:00Z is 2025.
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	rep, err := ReportIn(bytes.NewReader(data), 2025, la)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests[3].Request != "delete" || rep.Requests[3].Received != 4 {
		t.Errorf("Los Angeles 2025 deletes: %+v", rep.Requests[3])
	}
}

func TestReportRefusesBrokenChain(t *testing.T) {
	data, _ := os.ReadFile(fixture)
	bad := bytes.Replace(data, []byte(`"req_d2"`), []byte(`"req_d9"`), 1)
	if _, err := Report(bytes.NewReader(bad), 2025); !errors.Is(err, ErrTampered) {
		t.Fatalf("Report on a tampered file = %v", err)
	}
	if _, err := Report(bytes.NewReader(data), 1969); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Report(1969) = %v", err)
	}
}

func TestReportEmpty(t *testing.T) {
	rep, err := Report(bytes.NewReader(nil), 2025)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep.Requests[0])
	if want := `{"request":"know","received":0,"complied_in_whole":0,"complied_in_part":0,"denied":0,` +
		`"denied_by_basis":{"not_verifiable":0,"not_made_by_consumer":0,"exempt":0,"other":0},"no_response":0,` +
		`"responded":0,"median_days":null,"mean_days":null}`; string(b) != want {
		t.Fatalf("empty row:\n got %s\nwant %s", b, want)
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs (run with -update to accept):\n%s", path, got)
	}
}
