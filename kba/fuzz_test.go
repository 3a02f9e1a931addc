package kba_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/callproof/callproof/kba"
)

// FuzzNormalize feeds arbitrary entries for every factor name. Seeds: testdata/fuzz/FuzzNormalize.
// Properties: no panic; errors wrap ErrInvalidInput (or ErrUnknownFactor) and never echo the
// entry; an accepted entry has a canonical form that normalises to itself, never matches an
// unknown account, and matches a record holding exactly that value.
func FuzzNormalize(f *testing.F) {
	for _, fac := range kba.Factors() {
		f.Add(string(fac), kba.AnswerDigits(mustDemo(f, "cus_chen"), fac)+"#")
	}
	f.Fuzz(func(t *testing.T, factor, keyed string) {
		fac := kba.Factor(factor)
		norm, err := kba.Normalize(fac, keyed)
		if _, known := kba.Spec(fac); !known {
			if !errors.Is(err, kba.ErrUnknownFactor) {
				t.Fatalf("unknown factor: err = %v", err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, kba.ErrInvalidInput) {
				t.Fatalf("err %v does not wrap ErrInvalidInput", err)
			}
			if d := strings.TrimSuffix(keyed, "#"); len(d) >= 5 && strings.Contains(err.Error(), d) {
				t.Fatalf("error %q echoes the entry", err)
			}
			return
		}
		if kba.Match(nil, fac, norm) {
			t.Fatalf("an unknown account matched")
		}
		c := &kba.Customer{ID: "cus_fuzz", LastPaymentCents: -1}
		again := norm
		switch fac {
		case kba.FactorDOB:
			if len(norm) != 10 {
				t.Fatalf("dob canonical form has %d chars", len(norm))
			}
			c.DOB = norm
			again = norm[5:7] + norm[8:10] + norm[0:4]
		case kba.FactorZip:
			c.Zip = norm
		case kba.FactorSSNLast4:
			c.SSNLast4 = norm
		case kba.FactorPIN:
			c.PIN = norm
		case kba.FactorLastPayment:
			v, err := strconv.ParseInt(norm, 10, 64)
			if err != nil || strconv.FormatInt(v, 10) != norm {
				t.Fatalf("last payment canonical form not a plain integer")
			}
			c.LastPaymentCents = v
		}
		if n2, err := kba.Normalize(fac, again); err != nil || n2 != norm {
			t.Fatalf("canonical form does not normalise to itself (err %v)", err)
		}
		if want := fac != kba.FactorOTP && fac != kba.FactorTOTP; kba.Match(c, fac, norm) != want {
			t.Fatalf("Match against a record holding the value = %v, want %v", !want, want)
		}
		if fac == kba.FactorOTP && !kba.CheckOTP(norm, keyed) {
			t.Fatalf("CheckOTP rejects an accepted entry")
		}
	})
}

// FuzzParseDirectory feeds arbitrary YAML. Seeds: testdata/fuzz/FuzzParseDirectory. Properties:
// no panic; errors wrap ErrInvalidDirectory; every accepted customer is reachable by id and by
// account, and what a caller who knows the record keys normalises and matches for every
// knowledge factor: validation implies answerable.
func FuzzParseDirectory(f *testing.F) {
	f.Add(kba.DemoDirectoryYAML)
	f.Add(dir(ada))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			t.Skip("larger than any directory worth fuzzing")
		}
		d, err := kba.ParseDirectory(data)
		if err != nil {
			if !errors.Is(err, kba.ErrInvalidDirectory) {
				t.Fatalf("err %v does not wrap ErrInvalidDirectory", err)
			}
			return
		}
		if d.Len() == 0 {
			t.Fatal("accepted an empty directory")
		}
		for _, c := range d.Customers() {
			if got, ok := d.ByID(c.ID); !ok || got != c {
				t.Fatalf("customer not found by id")
			}
			if got, ok := d.ByAccount(c.Account); !ok || got != c {
				t.Fatalf("customer not found by account")
			}
			if _, err := c.TOTPKey(); err != nil {
				t.Fatalf("accepted TOTP secret does not decode: %v", err)
			}
			for _, fac := range kba.Factors() {
				if fac == kba.FactorOTP {
					continue
				}
				norm, err := kba.Normalize(fac, kba.AnswerDigits(c, fac))
				if err != nil || !kba.Match(c, fac, norm) {
					t.Fatalf("%s: the record's own answer does not match (err %v)", fac, err)
				}
			}
		}
	})
}

func mustDemo(tb testing.TB, id string) *kba.Customer {
	tb.Helper()
	c, ok := kba.DemoDirectory().ByID(id)
	if !ok {
		tb.Fatalf("no demo customer %s", id)
	}
	return c
}
