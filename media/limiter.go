package media

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// AddrLimiter limits how often one source address may start something (a WebSocket stream, a
// WebRTC offer, a SIP INVITE). It keeps one token bucket per address (per /64 for IPv6, since
// one host holds a whole /64), evicts idle buckets only once they have refilled (evicting a
// half-empty bucket would hand the address a fresh burst), and refuses new addresses when the
// table is full rather than growing without bound: failing closed under an address-rotation
// flood. It is safe for concurrent use.
type AddrLimiter struct {
	limit rate.Limit
	burst int
	max   int
	idle  time.Duration
	now   func() time.Time

	mu sync.Mutex
	m  map[netip.Addr]*addrBucket
}

type addrBucket struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

// NewAddrLimiter allows perMinute starts per address with bursts of burst, tracking at most
// maxAddrs addresses. perMinute <= 0 allows everything.
func NewAddrLimiter(perMinute, burst, maxAddrs int) *AddrLimiter {
	l := &AddrLimiter{limit: rate.Inf, burst: burst, max: maxAddrs, idle: 10 * time.Minute, now: time.Now,
		m: make(map[netip.Addr]*addrBucket)}
	if perMinute > 0 {
		l.limit = rate.Limit(float64(perMinute) / 60)
	}
	if l.burst < 1 {
		l.burst = 1
	}
	if l.max < 1 {
		l.max = 65536
	}
	return l
}

// SetClock replaces the clock (tests).
func (l *AddrLimiter) SetClock(now func() time.Time) { l.now = now }

// Allow reports whether addr may start one more thing now.
func (l *AddrLimiter) Allow(addr netip.Addr) bool {
	if l.limit == rate.Inf {
		return true
	}
	key := addrKey(addr)
	now := l.now()
	l.mu.Lock()
	b := l.m[key]
	if b == nil {
		if len(l.m) >= l.max {
			l.sweepLocked(now)
			if len(l.m) >= l.max {
				l.mu.Unlock()
				return false
			}
		}
		b = &addrBucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.m[key] = b
	}
	b.lastSeen = now
	l.mu.Unlock()
	return b.lim.AllowN(now, 1)
}

// AllowRemote is Allow for a "host:port" remote address; an unparsable one is refused.
func (l *AddrLimiter) AllowRemote(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return l.Allow(addr)
}

// Len is the number of addresses tracked.
func (l *AddrLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

func (l *AddrLimiter) sweepLocked(now time.Time) {
	for k, b := range l.m {
		if now.Sub(b.lastSeen) >= l.idle && b.lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, k)
		}
	}
}

func addrKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
