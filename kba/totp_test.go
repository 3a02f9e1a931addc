package kba

import (
	"testing"
	"time"
)

// RFC 6238 Appendix B test vectors for HMAC-SHA1 (8 digits, key "12345678901234567890").
func TestTOTPRFC6238Vectors(t *testing.T) {
	key := []byte("12345678901234567890")
	for _, v := range []struct {
		unix int64
		code string
	}{
		{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"},
		{1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
	} {
		if got := TOTPCode(key, TOTPStepAt(time.Unix(v.unix, 0)), 8); got != v.code {
			t.Errorf("T=%d: %s, want %s", v.unix, got, v.code)
		}
	}
}

func TestCheckTOTPWindow(t *testing.T) {
	key := []byte("12345678901234567890")
	now := time.Unix(1_800_000_000, 0)
	cur := TOTPStepAt(now)
	for _, c := range []struct {
		name string
		step int64
		ok   bool
	}{{"now", cur, true}, {"one step early", cur - 1, true}, {"one step late", cur + 1, true},
		{"two steps early", cur - 2, false}, {"two steps late", cur + 2, false}} {
		step, ok := CheckTOTP(key, TOTPCode(key, c.step, TOTPDigits), now)
		if ok != c.ok || (ok && step != c.step) {
			t.Errorf("%s: CheckTOTP = %d %v, want %d %v", c.name, step, ok, c.step, c.ok)
		}
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef"} {
		if _, ok := CheckTOTP(key, bad, now); ok {
			t.Errorf("CheckTOTP accepted %q", bad)
		}
	}
}

func TestMatchTOTP(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ada := &Customer{ID: "cus_ada", TOTPSecret: "JBSWY3DPEHPK3PXP"}
	key, err := ada.TOTPKey()
	if err != nil {
		t.Fatal(err)
	}
	code := TOTPCode(key, TOTPStepAt(now), TOTPDigits)
	if step, ok := MatchTOTP(ada, code, now); !ok || step != TOTPStepAt(now) {
		t.Fatalf("MatchTOTP(own code) = %d %v", step, ok)
	}
	if _, ok := MatchTOTP(&Customer{ID: "cus_nosecret"}, code, now); ok {
		t.Fatal("a customer without a secret matched")
	}
	if _, ok := MatchTOTP(nil, code, now); ok {
		t.Fatal("an unknown account matched")
	}
	if s, ok := Spec(FactorTOTP); !ok || s.Prompt != "ask_totp" || s.MinDigits != 6 || s.MaxDigits != 6 {
		t.Fatalf("Spec(totp) = %+v %v", s, ok)
	}
}
