package kba_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/callproof/callproof/kba"
	"github.com/callproof/callproof/kba/kbatest"
)

func TestGenerateOTPLength(t *testing.T) {
	for digits := 0; digits <= 12; digits++ {
		code, err := kba.GenerateOTP(nil, digits)
		if digits < kba.OTPMinDigits || digits > kba.OTPMaxDigits {
			if !errors.Is(err, kba.ErrOTPLength) {
				t.Errorf("GenerateOTP(%d) err = %v, want ErrOTPLength", digits, err)
			}
			continue
		}
		if err != nil || len(code) != digits {
			t.Fatalf("GenerateOTP(%d) = %d chars, %v", digits, len(code), err)
		}
		if _, err := kba.Normalize(kba.FactorOTP, code); err != nil {
			t.Errorf("generated code does not normalise: %v", err)
		}
		if !kba.CheckOTP(code, code+"#") {
			t.Errorf("generated code does not check")
		}
	}
}

// TestGenerateOTPRejection feeds bytes 250..255, which must be skipped, and checks leading
// zeros survive.
func TestGenerateOTPRejection(t *testing.T) {
	tests := []struct {
		name  string
		bytes []byte
		want  string
	}{
		{"rejects 250-255", []byte{255, 250, 0, 251, 11, 252, 249, 253, 100, 254, 37, 5}, "019075"},
		{"leading zeros kept", []byte{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}, "0000000000"},
		{"byte 249 is 9", []byte{249}, "999999"},
	}
	for _, tt := range tests {
		digits := len(tt.want)
		code, err := kba.GenerateOTP(kbatest.CycleReader(tt.bytes...), digits)
		if err != nil || code != tt.want {
			t.Errorf("%s: GenerateOTP = %q, %v; want %q", tt.name, code, err, tt.want)
		}
	}
}

func TestGenerateOTPReaderError(t *testing.T) {
	boom := errors.New("entropy gone")
	if _, err := kba.GenerateOTP(iotest.ErrReader(boom), 6); !errors.Is(err, boom) {
		t.Errorf("err = %v, want the reader's", err)
	}
	if _, err := kba.GenerateOTP(bytes.NewReader([]byte{1, 2, 3}), 6); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short reader: err = %v", err)
	}
	// A source that only ever gives rejected bytes is broken: an error, not an endless loop.
	if _, err := kba.GenerateOTP(kbatest.CycleReader(250, 251, 252, 253, 254, 255), 6); err == nil {
		t.Error("GenerateOTP accepted a source of rejected bytes")
	}
}

// TestGenerateOTPDistribution is a sanity check, not a proof: over 20 000 six-digit codes from
// crypto/rand, each position's digit counts pass a chi-square test (9 degrees of freedom,
// critical value 27.88 at p = 0.001), and no code repeats suspiciously often.
func TestGenerateOTPDistribution(t *testing.T) {
	const n, digits = 20000, 6
	var counts [digits][10]int
	seen := make(map[string]int, n)
	for range n {
		code, err := kba.GenerateOTP(nil, digits)
		if err != nil {
			t.Fatal(err)
		}
		seen[code]++
		for i := range digits {
			counts[i][code[i]-'0']++
		}
	}
	expected := float64(n) / 10
	for i := range digits {
		chi := 0.0
		for _, c := range counts[i] {
			d := float64(c) - expected
			chi += d * d / expected
		}
		if chi > 27.88 {
			t.Errorf("position %d: chi-square %.1f > 27.88: %v", i, chi, counts[i])
		}
	}
	// Birthday bound: about n²/2/10⁶ = 200 collisions are expected; a code seen 5 times in 20 000
	// draws from 10⁶ has probability far below 1e-9.
	for code, c := range seen {
		if c >= 5 {
			t.Errorf("code seen %d times", c)
			_ = code
		}
	}
}

func TestCheckOTP(t *testing.T) {
	tests := []struct {
		name            string
		expected, keyed string
		want            bool
	}{
		{"match with #", "012345", "012345#", true},
		{"match without #", "012345", "012345", true},
		{"10 digits", "0123456789", "0123456789#", true},
		{"wrong digit", "012345", "012346#", false},
		{"leading zero dropped", "012345", "12345#", false},
		{"prefix", "0123456789", "012345#", false},
		{"longer", "012345", "0123456#", false},
		{"empty keyed", "012345", "", false},
		{"empty expected", "", "", false},
		{"malformed expected never matches", "12345", "12345#", false},
		{"non-digit expected", "01234a", "01234a", false},
		{"star", "012345", "0123*5#", false},
	}
	for _, tt := range tests {
		if got := kba.CheckOTP(tt.expected, tt.keyed); got != tt.want {
			t.Errorf("%s: CheckOTP = %v, want %v", tt.name, got, tt.want)
		}
	}
}
