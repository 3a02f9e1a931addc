package kba_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/callproof/callproof/kba"
)

func TestSpec(t *testing.T) {
	tests := []struct {
		f          kba.Factor
		min, max   int
		terminator bool
		amr        string
	}{
		{kba.FactorDOB, 8, 8, false, "kba"},
		{kba.FactorZip, 5, 5, false, "kba"},
		{kba.FactorSSNLast4, 4, 4, false, "kba"},
		{kba.FactorPIN, 4, 8, true, "pin"},
		{kba.FactorLastPayment, 1, 15, true, "kba"},
		{kba.FactorOTP, 6, 10, true, "otp"},
	}
	if len(tests) != len(kba.Factors()) {
		t.Fatalf("test covers %d factors, kba has %d", len(tests), len(kba.Factors()))
	}
	for _, tt := range tests {
		s, ok := kba.Spec(tt.f)
		if !ok {
			t.Fatalf("Spec(%s) not found", tt.f)
		}
		if s.ID != tt.f || s.Prompt != "ask_"+string(tt.f) || s.MinDigits != tt.min || s.MaxDigits != tt.max ||
			s.Terminator != tt.terminator || s.AMR != tt.amr {
			t.Errorf("Spec(%s) = %+v", tt.f, s)
		}
	}
	if _, ok := kba.Spec("mothers_maiden_name"); ok {
		t.Error("Spec found an unknown factor")
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name  string
		f     kba.Factor
		keyed string
		want  string // "" means ErrInvalidInput
	}{
		// dob: MMDDYYYY, a real calendar date.
		{"dob", kba.FactorDOB, "07141985", "1985-07-14"},
		{"dob with #", kba.FactorDOB, "07141985#", "1985-07-14"},
		{"dob leap day in a leap year", kba.FactorDOB, "02292000", "2000-02-29"},
		{"dob leap day 1992", kba.FactorDOB, "02291992", "1992-02-29"},
		{"dob leap day in a century non-leap year", kba.FactorDOB, "02291900", ""},
		{"dob leap day in a common year", kba.FactorDOB, "02291985", ""},
		{"dob Feb 30", kba.FactorDOB, "02301985", ""},
		{"dob Apr 31", kba.FactorDOB, "04311985", ""},
		{"dob Dec 31", kba.FactorDOB, "12311999", "1999-12-31"},
		{"dob month 00", kba.FactorDOB, "00141985", ""},
		{"dob month 13", kba.FactorDOB, "13141985", ""},
		{"dob day 00", kba.FactorDOB, "07001985", ""},
		{"dob year 1899", kba.FactorDOB, "12311899", ""},
		{"dob year 1900", kba.FactorDOB, "01011900", "1900-01-01"},
		{"dob year 2100", kba.FactorDOB, "01012100", ""},
		{"dob DDMMYYYY by mistake", kba.FactorDOB, "14071985", ""},
		{"dob 6 digits", kba.FactorDOB, "071485", ""},
		{"dob 9 digits", kba.FactorDOB, "071419851", ""},
		{"dob star", kba.FactorDOB, "07*41985", ""},
		{"dob empty", kba.FactorDOB, "", ""},
		{"dob only #", kba.FactorDOB, "#", ""},
		{"dob two #", kba.FactorDOB, "07141985##", ""},
		// zip: 5 digits, leading zeros kept.
		{"zip", kba.FactorZip, "94107", "94107"},
		{"zip leading zero", kba.FactorZip, "02134", "02134"},
		{"zip with #", kba.FactorZip, "02134#", "02134"},
		{"zip 4", kba.FactorZip, "9410", ""},
		{"zip 6", kba.FactorZip, "941071", ""},
		{"zip+4", kba.FactorZip, "941071234", ""},
		{"zip letters", kba.FactorZip, "9410A", ""},
		// ssn_last4: 4 digits.
		{"ssn", kba.FactorSSNLast4, "6789", "6789"},
		{"ssn leading zeros", kba.FactorSSNLast4, "0457", "0457"},
		{"ssn 3", kba.FactorSSNLast4, "678", ""},
		{"ssn 5", kba.FactorSSNLast4, "56789", ""},
		{"ssn space", kba.FactorSSNLast4, "67 9", ""},
		// pin: 4 to 8 digits, '#'.
		{"pin 4", kba.FactorPIN, "2468#", "2468"},
		{"pin 8 leading zeros", kba.FactorPIN, "00731264#", "00731264"},
		{"pin without #", kba.FactorPIN, "2468", "2468"},
		{"pin 3", kba.FactorPIN, "246#", ""},
		{"pin 9", kba.FactorPIN, "123456789#", ""},
		{"pin #-first", kba.FactorPIN, "#2468", ""},
		{"pin unicode digit", kba.FactorPIN, "２468#", ""},
		// last_payment: dollars and cents as digits, '#'.
		{"last payment", kba.FactorLastPayment, "12550#", "12550"},
		{"last payment leading zeros", kba.FactorLastPayment, "0012550#", "12550"},
		{"last payment cents only", kba.FactorLastPayment, "005#", "5"},
		{"last payment one digit", kba.FactorLastPayment, "5#", "5"},
		{"last payment zero", kba.FactorLastPayment, "000#", "0"},
		{"last payment 15 digits", kba.FactorLastPayment, "999999999999999#", "999999999999999"},
		{"last payment 16 digits", kba.FactorLastPayment, "1000000000000000#", ""},
		{"last payment star as decimal point", kba.FactorLastPayment, "125*50#", ""},
		{"last payment empty", kba.FactorLastPayment, "#", ""},
		// otp: 6 to 10 digits, '#', leading zeros kept.
		{"otp 6", kba.FactorOTP, "012345#", "012345"},
		{"otp 10", kba.FactorOTP, "0123456789#", "0123456789"},
		{"otp 5", kba.FactorOTP, "01234#", ""},
		{"otp 11", kba.FactorOTP, "01234567890#", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kba.Normalize(tt.f, tt.keyed)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Normalize(%s) = %q, want ErrInvalidInput", tt.f, got)
				}
				if !errors.Is(err, kba.ErrInvalidInput) {
					t.Fatalf("error %v does not wrap ErrInvalidInput", err)
				}
				if !strings.Contains(err.Error(), string(tt.f)) {
					t.Errorf("error %q does not name the factor", err)
				}
				if d := strings.TrimSuffix(tt.keyed, "#"); len(d) >= 3 && strings.Contains(err.Error(), d) {
					t.Errorf("error %q echoes the entry", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Normalize(%s) = %q, %v; want %q", tt.f, got, err, tt.want)
			}
		})
	}
	if _, err := kba.Normalize("shoe_size", "42"); !errors.Is(err, kba.ErrUnknownFactor) {
		t.Errorf("unknown factor: err = %v, want ErrUnknownFactor", err)
	}
}

func TestMatch(t *testing.T) {
	d := kba.DemoDirectory()
	ada, _ := d.ByID("cus_ada")
	chen, _ := d.ByID("cus_chen")
	tests := []struct {
		name  string
		c     *kba.Customer
		f     kba.Factor
		keyed string
		want  bool
	}{
		{"ada dob", ada, kba.FactorDOB, "07141985", true},
		{"ada dob off by a day", ada, kba.FactorDOB, "07151985", false},
		{"ada dob other customer's", ada, kba.FactorDOB, "02291992", false},
		{"chen dob leap day", chen, kba.FactorDOB, "02291992", true},
		{"ada zip", ada, kba.FactorZip, "94107", true},
		{"ada zip wrong", ada, kba.FactorZip, "94108", false},
		{"chen zip leading zero", chen, kba.FactorZip, "02134", true},
		{"ada ssn", ada, kba.FactorSSNLast4, "6789", true},
		{"ada ssn wrong", ada, kba.FactorSSNLast4, "6788", false},
		{"chen ssn leading zero", chen, kba.FactorSSNLast4, "0457", true},
		{"ada pin", ada, kba.FactorPIN, "2468#", true},
		{"ada pin prefix of nothing", ada, kba.FactorPIN, "24680#", false},
		{"ada pin wrong", ada, kba.FactorPIN, "2469#", false},
		{"chen pin leading zeros", chen, kba.FactorPIN, "00731264#", true},
		{"chen pin without leading zeros", chen, kba.FactorPIN, "731264#", false},
		{"ada last payment", ada, kba.FactorLastPayment, "12550#", true},
		{"ada last payment leading zeros", ada, kba.FactorLastPayment, "00012550#", true},
		{"ada last payment dollars only", ada, kba.FactorLastPayment, "125#", false},
		{"ada last payment off by a cent", ada, kba.FactorLastPayment, "12551#", false},
		{"chen last payment under $10", chen, kba.FactorLastPayment, "705#", true},
		{"chen last payment with zero dollars padded", chen, kba.FactorLastPayment, "0705#", true},
		{"otp never matches the directory", ada, kba.FactorOTP, "123456#", false},
		{"unknown account dob", nil, kba.FactorDOB, "07141985", false},
		{"unknown account keying the dummy dob", nil, kba.FactorDOB, "01011900", false},
		{"unknown account keying the dummy zip", nil, kba.FactorZip, "00000", false},
		{"unknown account keying the dummy ssn", nil, kba.FactorSSNLast4, "0000", false},
		{"unknown account keying the dummy pin", nil, kba.FactorPIN, "00000000#", false},
		{"unknown account keying the dummy payment", nil, kba.FactorLastPayment, "0#", false},
		{"unknown account otp", nil, kba.FactorOTP, "123456#", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			norm, err := kba.Normalize(tt.f, tt.keyed)
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if got := kba.Match(tt.c, tt.f, norm); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatchEdges(t *testing.T) {
	ada, _ := kba.DemoDirectory().ByID("cus_ada")
	empty := &kba.Customer{ID: "cus_empty", LastPaymentCents: -1}
	for _, f := range kba.Factors() {
		if kba.Match(empty, f, "") {
			t.Errorf("empty record matched an empty %s", f)
		}
		if kba.Match(ada, f, strings.Repeat("0", 40)) {
			t.Errorf("%s matched an over-long value", f)
		}
	}
	if kba.Match(empty, kba.FactorLastPayment, "-1") {
		t.Error("negative stored payment matched")
	}
	if kba.Match(ada, "shoe_size", "42") {
		t.Error("unknown factor matched")
	}
	// Match takes canonical forms: a raw MMDDYYYY entry is not one.
	if kba.Match(ada, kba.FactorDOB, "07141985") {
		t.Error("dob matched a non-normalised entry")
	}
}

// TestAnswerDigits checks that what AnswerDigits says a caller keys normalises and matches, for
// every demo customer and factor.
func TestAnswerDigits(t *testing.T) {
	for _, c := range kba.DemoDirectory().Customers() {
		for _, f := range kba.Factors() {
			a := kba.AnswerDigits(c, f)
			if f == kba.FactorOTP {
				if a != "" {
					t.Errorf("%s otp answer %q, want none", c.ID, a)
				}
				continue
			}
			s, _ := kba.Spec(f)
			if len(a) < s.MinDigits || len(a) > s.MaxDigits {
				t.Errorf("%s %s: answer has %d digits, spec %d..%d", c.ID, f, len(a), s.MinDigits, s.MaxDigits)
			}
			norm, err := kba.Normalize(f, a)
			if err != nil || !kba.Match(c, f, norm) {
				t.Errorf("%s %s: AnswerDigits does not match (err %v)", c.ID, f, err)
			}
		}
	}
	chen, _ := kba.DemoDirectory().ByID("cus_chen")
	if got := kba.AnswerDigits(chen, kba.FactorLastPayment); got != "705" {
		t.Errorf("chen last payment answer %q, want 705", got)
	}
	small := &kba.Customer{LastPaymentCents: 5, DOB: "bad"}
	if got := kba.AnswerDigits(small, kba.FactorLastPayment); got != "005" {
		t.Errorf("5 cents answer %q, want 005", got)
	}
	if kba.AnswerDigits(small, kba.FactorDOB) != "" || kba.AnswerDigits(nil, kba.FactorZip) != "" || kba.AnswerDigits(small, "x") != "" {
		t.Error("AnswerDigits invented an answer")
	}
}

func TestFactorsForField(t *testing.T) {
	tests := []struct {
		field string
		want  []kba.Factor
		ok    bool
	}{
		{"dob", []kba.Factor{kba.FactorDOB}, true},
		{"zip", []kba.Factor{kba.FactorZip}, true},
		{"ssn_last4", []kba.Factor{kba.FactorSSNLast4}, true},
		{"pin", []kba.Factor{kba.FactorPIN}, true},
		{"last_payment_cents", []kba.Factor{kba.FactorLastPayment}, true},
		{"phones", []kba.Factor{kba.FactorOTP}, true},
		{"emails", []kba.Factor{kba.FactorOTP}, true},
		{"totp_secret", []kba.Factor{kba.FactorTOTP}, true},
		{"name", nil, true},
		{"favourite_colour", nil, false},
	}
	for _, tt := range tests {
		got, ok := kba.FactorsForField(tt.field)
		if ok != tt.ok || len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
			t.Errorf("FactorsForField(%s) = %v, %v; want %v, %v", tt.field, got, ok, tt.want, tt.ok)
		}
	}
}
