package otp

import (
	"context"
	"sync"
	"time"
)

// DefaultMaxRecords caps the records a Memory holds at once.
const DefaultMaxRecords = 1 << 17

const memorySweepInterval = time.Minute

// MemoryOption configures a Memory.
type MemoryOption func(*Memory)

// WithMemoryClock sets the clock the store uses to expire records (default time.Now).
func WithMemoryClock(now func() time.Time) MemoryOption {
	return func(m *Memory) {
		if now != nil {
			m.now = now
		}
	}
}

// WithMaxRecords caps the records held at once (default DefaultMaxRecords). When the cap is
// reached and nothing has lapsed, Update of a new subject fails with ErrFull (which matches
// ErrUnavailable): the store refuses rather than forgetting a failure count.
func WithMaxRecords(n int) MemoryOption {
	return func(m *Memory) {
		if n > 0 {
			m.max = n
		}
	}
}

// Memory is the embedded, single-node Store. It is safe for concurrent use and every Update
// runs fn under one lock. Lapsed records are dropped on access, by a sweep piggy-backed on
// writes at most once a minute, and whenever the cap is reached. It starts no goroutine.
type Memory struct {
	now func() time.Time
	max int

	mu      sync.Mutex
	recs    map[string]Record
	sweptAt time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{now: time.Now, max: DefaultMaxRecords, recs: make(map[string]Record)}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Load implements Store.
func (m *Memory) Load(ctx context.Context, subject string) (Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, false, err
	}
	if subject == "" {
		return Record{}, false, ErrBadSubject
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.lookup(subject, now)
	return r.clone(), ok, nil
}

// Update implements Store.
func (m *Memory) Update(ctx context.Context, subject string, fn func(Record, bool) (Record, error)) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if subject == "" {
		return Record{}, ErrBadSubject
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, found := m.lookup(subject, now)
	next, err := fn(cur.clone(), found)
	if err != nil {
		return Record{}, err
	}
	if !next.KeepUntil.After(now) {
		delete(m.recs, subject)
		return next, nil
	}
	if !found {
		if now.Sub(m.sweptAt) >= memorySweepInterval {
			m.sweep(now)
		}
		if len(m.recs) >= m.max {
			if now.Sub(m.sweptAt) >= time.Second { // a full store sweeps at most once a second
				m.sweep(now)
			}
			if len(m.recs) >= m.max {
				return Record{}, fullError{}
			}
		}
	}
	next = next.clone()
	m.recs[subject] = next
	return next.clone(), nil
}

// Len returns how many records the store holds, lapsed ones included until they are swept.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs)
}

// lookup returns the live record for subject, dropping a lapsed one. m.mu is held.
func (m *Memory) lookup(subject string, now time.Time) (Record, bool) {
	r, ok := m.recs[subject]
	if !ok {
		return Record{}, false
	}
	if !r.KeepUntil.After(now) {
		delete(m.recs, subject)
		return Record{}, false
	}
	return r, true
}

// sweep drops every lapsed record. m.mu is held.
func (m *Memory) sweep(now time.Time) {
	m.sweptAt = now
	for k, r := range m.recs {
		if !r.KeepUntil.After(now) {
			delete(m.recs, k)
		}
	}
}
