package media

import (
	"net/netip"
	"testing"
	"time"
)

func TestAddrLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := NewAddrLimiter(60, 3, 2) // one a second, bursts of 3, two addresses
	l.SetClock(func() time.Time { return now })
	a := netip.MustParseAddr("192.0.2.1")
	for i := 0; i < 3; i++ {
		if !l.Allow(a) {
			t.Fatalf("burst start %d refused", i+1)
		}
	}
	if l.Allow(a) {
		t.Fatal("fourth start within the burst allowed")
	}
	now = now.Add(time.Second)
	if !l.Allow(a) {
		t.Fatal("refill after a second refused")
	}
	// IPv6 addresses of one /64 share a bucket.
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff")
	for i := 0; i < 3; i++ {
		l.Allow(v6a)
	}
	if l.Allow(v6b) {
		t.Fatal("another address of the same /64 got a fresh burst")
	}
	// The table is full (two keys) and nothing is idle: a new address is refused.
	if l.Allow(netip.MustParseAddr("198.51.100.7")) {
		t.Fatal("a third address was admitted to a full table")
	}
	// After the idle period, refilled buckets are evicted and new addresses get in.
	now = now.Add(11 * time.Minute)
	if !l.Allow(netip.MustParseAddr("198.51.100.7")) {
		t.Fatal("new address refused after idle buckets should have been evicted")
	}
	if !l.AllowRemote("203.0.113.9:5060") && l.Len() > 2 {
		t.Fatal("table grew past its cap")
	}
	if l.AllowRemote("not an address") {
		t.Fatal("unparsable remote address allowed")
	}
	if !NewAddrLimiter(0, 0, 0).Allow(a) {
		t.Fatal("an unlimited limiter refused")
	}
}
