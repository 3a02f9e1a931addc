package kbatest_test

import (
	"io"
	"testing"
	"time"

	"github.com/callproof/callproof/kba"
	"github.com/callproof/callproof/kba/kbatest"
)

func TestClock(t *testing.T) {
	c := kbatest.NewClock(time.Time{})
	if !c.Now().Equal(kbatest.Epoch) {
		t.Fatalf("Now = %v, want Epoch", c.Now())
	}
	if got := c.Advance(30 * time.Minute); !got.Equal(kbatest.Epoch.Add(30 * time.Minute)) {
		t.Fatalf("Advance = %v", got)
	}
	if d := c.Since(kbatest.Epoch); d != 30*time.Minute {
		t.Fatalf("Since = %v", d)
	}
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c.Set(at)
	if !c.Now().Equal(at) {
		t.Fatalf("Set: Now = %v", c.Now())
	}
}

func TestKeyed(t *testing.T) {
	ada := kbatest.Customer(t, "cus_ada")
	tests := []struct {
		f    kba.Factor
		want string
	}{
		{kba.FactorDOB, "07141985"},
		{kba.FactorZip, "94107"},
		{kba.FactorSSNLast4, "6789"},
		{kba.FactorPIN, "2468#"},
		{kba.FactorLastPayment, "12550#"},
		{kba.FactorOTP, ""},
	}
	for _, tt := range tests {
		if got := kbatest.Keyed(ada, tt.f); got != tt.want {
			t.Errorf("Keyed(ada, %s) = %q, want %q", tt.f, got, tt.want)
		}
	}
}

func TestCycleReader(t *testing.T) {
	r := kbatest.CycleReader(1, 2, 3)
	b := make([]byte, 7)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatal(err)
	}
	if string(b) != "\x01\x02\x03\x01\x02\x03\x01" {
		t.Fatalf("read %v", b)
	}
	code, err := kba.GenerateOTP(kbatest.CycleReader(3, 1, 4, 1, 5, 9), 6)
	if err != nil || code != "314159" {
		t.Fatalf("GenerateOTP = %q, %v", code, err)
	}
}
