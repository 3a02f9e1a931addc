package webrtc

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

const (
	// maxSources bounds the per-source limiter map; when it is full of sources still within
	// their window, new sources are refused (fail closed) rather than growing the map.
	maxSources = 10000
	// sweepEvery is the least time between two sweeps of a full map.
	sweepEvery = time.Second
)

// sourceLimiter rate-limits offers per source: an IPv4 address, or the /64 of an IPv6 address
// (one host usually holds a whole /64). It keeps no goroutine: idle sources are evicted when the
// map is full, and only once their bucket has refilled, so eviction never hands a source a
// fresh burst.
type sourceLimiter struct {
	limit rate.Limit
	burst int
	idle  time.Duration // time for an empty bucket to refill
	max   int
	now   func() time.Time

	mu        sync.Mutex
	m         map[netip.Prefix]*source
	lastSweep time.Time
}

type source struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

func newSourceLimiter(perMinute int) *sourceLimiter {
	return &sourceLimiter{
		limit: rate.Every(time.Minute / time.Duration(perMinute)),
		burst: perMinute,
		idle:  time.Minute,
		max:   maxSources,
		now:   time.Now,
		m:     make(map[netip.Prefix]*source),
	}
}

// sourceKey returns the limiter key of a remote address ("host:port"). Addresses that do not
// parse share one key.
func sourceKey(remote string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Prefix{}
	}
	a := ap.Addr().Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// allow reports whether key may make one more offer now.
func (s *sourceLimiter) allow(key netip.Prefix) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if e == nil {
		if len(s.m) >= s.max {
			if now.Sub(s.lastSweep) >= sweepEvery {
				s.sweepLocked(now)
			}
			if len(s.m) >= s.max {
				return false
			}
		}
		e = &source{lim: rate.NewLimiter(s.limit, s.burst)}
		s.m[key] = e
	}
	e.lastSeen = now
	return e.lim.AllowN(now, 1)
}

// sweepLocked drops sources idle for a whole refill period whose bucket is full again.
func (s *sourceLimiter) sweepLocked(now time.Time) {
	s.lastSweep = now
	for k, e := range s.m {
		if now.Sub(e.lastSeen) >= s.idle && e.lim.TokensAt(now) >= float64(s.burst) {
			delete(s.m, k)
		}
	}
}

// size returns the number of sources tracked.
func (s *sourceLimiter) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
