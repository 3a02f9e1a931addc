// Package kbatest owns the test helpers for code built on kba: a fixed, manually advanced clock
// for lockout, passcode and token expiry tests, the demo customers and what a correct caller
// keys for them, and a deterministic byte source for GenerateOTP.
package kbatest

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/callproof/callproof/kba"
)

// Epoch is the instant a Clock from NewClock(time.Time{}) starts at: 2026-01-02 15:04:05 UTC.
var Epoch = time.Date(2026, time.January, 2, 15, 4, 5, 0, time.UTC)

// Clock is a clock that moves only when told to. It is safe for concurrent use; pass its Now
// method wherever code takes a func() time.Time.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock reading t, or Epoch when t is zero.
func NewClock(t time.Time) *Clock {
	if t.IsZero() {
		t = Epoch
	}
	return &Clock{now: t}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward if d is negative) and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Since returns the time elapsed on the clock since t.
func (c *Clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Customer returns the demo directory's customer with this id ("cus_ada", "cus_ben",
// "cus_chen"), failing the test when there is none.
func Customer(t testing.TB, id string) *kba.Customer {
	t.Helper()
	c, ok := kba.DemoDirectory().ByID(id)
	if !ok {
		t.Fatalf("kbatest: no demo customer %q", id)
	}
	return c
}

// Keyed returns the digits a caller who knows c's record keys for f, followed by '#' when the
// factor is '#'-terminated: what a scripted caller sends. It is "" where kba.AnswerDigits is.
func Keyed(c *kba.Customer, f kba.Factor) string {
	d := kba.AnswerDigits(c, f)
	if s, ok := kba.Spec(f); ok && s.Terminator && d != "" {
		d += "#"
	}
	return d
}

// CycleReader returns a reader that repeats b forever: a deterministic stand-in for
// crypto/rand in kba.GenerateOTP tests. An empty b reads zeros.
func CycleReader(b ...byte) io.Reader {
	if len(b) == 0 {
		b = []byte{0}
	}
	return &cycle{b: append([]byte(nil), b...)}
}

type cycle struct {
	mu sync.Mutex
	b  []byte
	i  int
}

func (c *cycle) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for j := range p {
		p[j] = c.b[c.i]
		c.i = (c.i + 1) % len(c.b)
	}
	return len(p), nil
}
