package kba_test

import (
	"slices"
	"testing"

	"github.com/callproof/callproof/kba"
)

func TestAMR(t *testing.T) {
	tests := []struct {
		name    string
		factors []kba.Factor
		want    []string
	}{
		{"none", nil, nil},
		{"knowledge only", []kba.Factor{kba.FactorDOB, kba.FactorZip}, []string{"kba"}},
		{"every knowledge factor", []kba.Factor{kba.FactorDOB, kba.FactorZip, kba.FactorSSNLast4, kba.FactorLastPayment}, []string{"kba"}},
		{"pin only", []kba.Factor{kba.FactorPIN}, []string{"pin"}},
		{"knowledge and pin: one category, not mfa", []kba.Factor{kba.FactorPIN, kba.FactorDOB}, []string{"kba", "pin"}},
		{"otp only", []kba.Factor{kba.FactorOTP}, []string{"otp"}},
		{"knowledge and otp: mfa", []kba.Factor{kba.FactorOTP, kba.FactorZip}, []string{"kba", "otp", "mfa"}},
		{"pin and otp: mfa", []kba.Factor{kba.FactorPIN, kba.FactorOTP}, []string{"pin", "otp", "mfa"}},
		{"all", kba.Factors(), []string{"kba", "pin", "otp", "mfa"}},
		{"unknown ignored", []kba.Factor{"voiceprint", kba.FactorDOB}, []string{"kba"}},
	}
	for _, tt := range tests {
		if got := kba.AMR(tt.factors); !slices.Equal(got, tt.want) {
			t.Errorf("%s: AMR = %v, want %v", tt.name, got, tt.want)
		}
	}
}
