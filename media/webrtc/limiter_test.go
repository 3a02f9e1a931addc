package webrtc

import (
	"net/netip"
	"testing"
	"time"
)

func TestSourceKey(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1:1000", "192.0.2.1:2000", true},
		{"192.0.2.1:1000", "192.0.2.2:1000", false},
		{"[2001:db8::1]:1", "[2001:db8::ffff:2]:2", true}, // one /64
		{"[2001:db8::1]:1", "[2001:db8:0:1::1]:1", false},
		{"[::ffff:192.0.2.1]:1", "192.0.2.1:2", true},
		{"garbage", "@", true}, // unparseable addresses share one key
	}
	for _, tt := range tests {
		if got := sourceKey(tt.a) == sourceKey(tt.b); got != tt.same {
			t.Errorf("sourceKey(%q) == sourceKey(%q) is %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}

func TestSourceLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newSourceLimiter(2)
	s.now = func() time.Time { return now }
	a, b := sourceKey("192.0.2.1:1"), sourceKey("192.0.2.2:1")
	for i, want := range []bool{true, true, false} {
		if got := s.allow(a); got != want {
			t.Fatalf("offer %d from a: allowed %v, want %v", i+1, got, want)
		}
	}
	if !s.allow(b) {
		t.Fatal("b is limited by a's offers")
	}
	now = now.Add(30 * time.Second) // one token back at 2 a minute
	if !s.allow(a) || s.allow(a) {
		t.Fatal("after 30 s a should get exactly one offer")
	}
}

func TestSourceLimiterBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newSourceLimiter(10)
	s.now = func() time.Time { return now }
	s.max = 3
	for i := 1; i <= 3; i++ {
		if !s.allow(netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 32)) {
			t.Fatalf("source %d refused", i)
		}
	}
	fourth := sourceKey("192.0.2.4:1")
	if s.allow(fourth) {
		t.Fatal("a full map took a fourth source; it must fail closed")
	}
	now = now.Add(30 * time.Second) // idle, but buckets not refilled yet: keep them
	if s.allow(fourth) || s.size() != 3 {
		t.Fatalf("evicted sources before their bucket refilled (size %d)", s.size())
	}
	now = now.Add(31 * time.Second)
	if !s.allow(fourth) {
		t.Fatal("idle, refilled sources were not evicted for a new one")
	}
	if s.size() != 1 {
		t.Errorf("size %d after the sweep, want 1", s.size())
	}
}
