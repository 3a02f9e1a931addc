package sessions

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Defaults for NewMemory.
const (
	// DefaultRetention is how long the log of an ended call stays available for replay.
	DefaultRetention = 15 * time.Minute
	// DefaultIdleExpiry drops the log of a call that never ended after this long without a message.
	DefaultIdleExpiry = 4 * time.Hour
	// DefaultMaxKeys caps the attempt counters held at once.
	DefaultMaxKeys = 1 << 18
	// DefaultMaxCalls caps the call logs held at once.
	DefaultMaxCalls = 1 << 14
	// DefaultMaxMessagesPerCall caps one call's log.
	DefaultMaxMessagesPerCall = 1024
	// DefaultMaxReplayIDs caps the single-use ids (Replay) held at once.
	DefaultMaxReplayIDs = 1 << 18
	// defaultFeedQueue is how many appended messages a feed holds for its reader before it
	// falls back to reading the log (which is exact, only slower).
	defaultFeedQueue = 4096

	sweepInterval = time.Minute
)

// MemoryOption configures a Memory.
type MemoryOption func(*Memory)

// WithClock sets the clock (default time.Now). Tests pass a fixed or stepped clock.
func WithClock(now func() time.Time) MemoryOption {
	return func(m *Memory) {
		if now != nil {
			m.now = now
		}
	}
}

// WithRetention sets how long an ended call's log is kept (default DefaultRetention).
func WithRetention(d time.Duration) MemoryOption {
	return func(m *Memory) {
		if d > 0 {
			m.retention = d
		}
	}
}

// WithIdleExpiry sets how long a call log that never ended is kept after its last message
// (default DefaultIdleExpiry).
func WithIdleExpiry(d time.Duration) MemoryOption {
	return func(m *Memory) {
		if d > 0 {
			m.idle = d
		}
	}
}

// WithReplayLimit caps the single-use ids remembered at once (default DefaultMaxReplayIDs).
// When the cap is reached and none has expired, Consume fails with ErrFull (which matches
// ErrUnavailable): a token is refused rather than an id forgotten early.
func WithReplayLimit(n int) MemoryOption {
	return func(m *Memory) {
		if n > 0 {
			m.maxReplay = n
		}
	}
}

// WithLimits caps attempt keys, call logs and messages per call (zero keeps a default). When
// a cap is reached and nothing has expired, writes fail with ErrFull (which matches
// ErrUnavailable): the store fails closed rather than forgetting a lockout.
func WithLimits(maxKeys, maxCalls, maxPerCall int) MemoryOption {
	return func(m *Memory) {
		if maxKeys > 0 {
			m.maxKeys = maxKeys
		}
		if maxCalls > 0 {
			m.maxCalls = maxCalls
		}
		if maxPerCall > 0 {
			m.maxPerCall = maxPerCall
		}
	}
}

// Memory is the embedded, single-node store: attempt counters (Attempts), single-use ids
// (Replay) and the per-call agent message log (AgentLog, AgentWatcher). It is safe for
// concurrent use; each operation is atomic. Expired entries are dropped lazily: on access, on
// a periodic sweep piggy-backed on writes, and whenever a size cap is reached. It starts no
// goroutine.
type Memory struct {
	now        func() time.Time
	retention  time.Duration
	idle       time.Duration
	maxKeys    int
	maxCalls   int
	maxPerCall int
	maxReplay  int
	feedQueue  int

	amu      sync.Mutex
	attempts map[string]*attempt
	aSweptAt time.Time

	rmu      sync.Mutex
	replay   map[string]time.Time // id -> remembered until
	rSweptAt time.Time

	lmu      sync.Mutex
	calls    map[string]*callLog
	lSweptAt time.Time
	last     EventID
	feeds    map[*memFeed]struct{}
}

var (
	_ Attempts     = (*Memory)(nil)
	_ Replay       = (*Memory)(nil)
	_ AgentLog     = (*Memory)(nil)
	_ AgentWatcher = (*Memory)(nil)
	_ AgentFeed    = (*memFeed)(nil)
)

type attempt struct {
	failures    int
	lockedUntil time.Time // zero when not locked
	expires     time.Time // end of the window, or of the lock
}

type callLog struct {
	msgs  []AgentMessage
	ids   []EventID // msgs[i].ID parsed, increasing
	ended time.Time // zero while the call is live
	last  time.Time // time of the last message
}

// NewMemory returns an empty store.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{
		now:        time.Now,
		retention:  DefaultRetention,
		idle:       DefaultIdleExpiry,
		maxKeys:    DefaultMaxKeys,
		maxCalls:   DefaultMaxCalls,
		maxPerCall: DefaultMaxMessagesPerCall,
		maxReplay:  DefaultMaxReplayIDs,
		feedQueue:  defaultFeedQueue,
		attempts:   make(map[string]*attempt),
		replay:     make(map[string]time.Time),
		calls:      make(map[string]*callLog),
		feeds:      make(map[*memFeed]struct{}),
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Check implements Attempts.
func (m *Memory) Check(ctx context.Context, key string) (LockState, error) {
	if err := ctx.Err(); err != nil {
		return LockState{}, err
	}
	if key == "" {
		return LockState{}, ErrBadKey
	}
	now := m.now()
	m.amu.Lock()
	defer m.amu.Unlock()
	return m.lookup(key, now).state(now), nil
}

// Fail implements Attempts. The window starts at the first failure (a fixed window, like
// INCR plus PEXPIRE on first increment); reaching r.Max locks the key for r.LockFor.
func (m *Memory) Fail(ctx context.Context, key string, r Rule) (LockState, error) {
	if err := ctx.Err(); err != nil {
		return LockState{}, err
	}
	if key == "" {
		return LockState{}, ErrBadKey
	}
	if err := r.Validate(); err != nil {
		return LockState{}, err
	}
	now := m.now()
	m.amu.Lock()
	defer m.amu.Unlock()
	m.sweepAttempts(now, false)
	a := m.lookup(key, now)
	if a == nil {
		if len(m.attempts) >= m.maxKeys {
			m.sweepAttempts(now, true)
			if len(m.attempts) >= m.maxKeys {
				return LockState{}, fmt.Errorf("attempts: %d keys held: %w", len(m.attempts), errFull)
			}
		}
		a = &attempt{expires: now.Add(r.Window)}
		m.attempts[key] = a
	}
	if a.locked(now) {
		return a.state(now), nil
	}
	a.failures++
	if a.failures >= r.Max {
		a.failures = r.Max
		a.lockedUntil = now.Add(r.LockFor)
		a.expires = a.lockedUntil
	}
	return a.state(now), nil
}

// Reset implements Attempts.
func (m *Memory) Reset(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return ErrBadKey
	}
	m.amu.Lock()
	delete(m.attempts, key)
	m.amu.Unlock()
	return nil
}

// lookup returns the key's live entry, dropping an expired one. m.amu is held.
func (m *Memory) lookup(key string, now time.Time) *attempt {
	a := m.attempts[key]
	if a != nil && !now.Before(a.expires) {
		delete(m.attempts, key)
		return nil
	}
	return a
}

// sweepAttempts drops expired entries, at most once per sweepInterval unless forced.
func (m *Memory) sweepAttempts(now time.Time, force bool) {
	if !force && now.Sub(m.aSweptAt) < sweepInterval {
		return
	}
	m.aSweptAt = now
	for k, a := range m.attempts {
		if !now.Before(a.expires) {
			delete(m.attempts, k)
		}
	}
}

func (a *attempt) locked(now time.Time) bool { return a != nil && now.Before(a.lockedUntil) }

// Consume implements Replay: id is remembered until until (at least MinReplayTTL from now).
func (m *Memory) Consume(ctx context.Context, id string, until time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if id == "" {
		return false, ErrBadKey
	}
	now := m.now()
	if floor := now.Add(MinReplayTTL); until.Before(floor) {
		until = floor
	}
	m.rmu.Lock()
	defer m.rmu.Unlock()
	m.sweepReplay(now, false)
	exp, held := m.replay[id]
	if held && now.Before(exp) {
		return false, nil
	}
	if !held && len(m.replay) >= m.maxReplay {
		m.sweepReplay(now, true)
		if len(m.replay) >= m.maxReplay {
			return false, fmt.Errorf("replay: %d ids held: %w", len(m.replay), errFull)
		}
	}
	m.replay[id] = until
	return true, nil
}

// sweepReplay drops expired ids, at most once per sweepInterval unless forced.
func (m *Memory) sweepReplay(now time.Time, force bool) {
	if !force && now.Sub(m.rSweptAt) < sweepInterval {
		return
	}
	m.rSweptAt = now
	for id, exp := range m.replay {
		if !now.Before(exp) {
			delete(m.replay, id)
		}
	}
}

func (a *attempt) state(now time.Time) LockState {
	if a == nil {
		return LockState{}
	}
	s := LockState{Failures: a.failures}
	if a.locked(now) {
		s.Locked, s.RetryAfter = true, a.lockedUntil.Sub(now)
	}
	return s
}

// Append stores msg in its call's log with a fresh event id, greater than every id assigned
// before by this Memory, and returns the stored copy. A zero At is set to now. A "call"
// message with state "ended" starts the log's retention.
func (m *Memory) Append(ctx context.Context, msg AgentMessage) (AgentMessage, error) {
	if err := ctx.Err(); err != nil {
		return AgentMessage{}, err
	}
	if msg.Type == "" || msg.Call == "" {
		return AgentMessage{}, fmt.Errorf("%w: type and call are required", ErrBadMessage)
	}
	now := m.now()
	m.lmu.Lock()
	defer m.lmu.Unlock()
	m.sweepCalls(now, false)
	l := m.liveLog(msg.Call, now)
	if l == nil {
		if len(m.calls) >= m.maxCalls {
			m.sweepCalls(now, true)
			if len(m.calls) >= m.maxCalls {
				return AgentMessage{}, fmt.Errorf("agent log: %d calls held: %w", len(m.calls), errFull)
			}
		}
		l = &callLog{}
		m.calls[msg.Call] = l
	}
	if len(l.msgs) >= m.maxPerCall {
		return AgentMessage{}, fmt.Errorf("agent log: %d messages for one call: %w", len(l.msgs), errFull)
	}
	ms := now.UnixMilli()
	if ms > m.last.Millis {
		m.last = EventID{Millis: ms}
	} else {
		m.last.Seq++
	}
	msg.ID = m.last.String()
	if msg.At.IsZero() {
		msg.At = now
	}
	msg.AMR = slices.Clone(msg.AMR)
	l.msgs = append(l.msgs, msg)
	l.ids = append(l.ids, m.last)
	l.last = now
	if msg.Type == TypeCall && msg.State == StateEnded {
		l.ended = now
	}
	for f := range m.feeds {
		f.enqueueLocked(msg)
	}
	return cloneMessage(msg), nil
}

// Since returns the messages of call stored after afterID ("" for all), oldest first. With
// call "" it returns the messages of every call still held (live, or ended within the
// retention), merged in event id order: the replay for an agent that subscribes to all calls.
func (m *Memory) Since(ctx context.Context, call, afterID string) ([]AgentMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var after EventID
	if afterID != "" {
		var err error
		if after, err = ParseEventID(afterID); err != nil {
			return nil, err
		}
	}
	now := m.now()
	m.lmu.Lock()
	defer m.lmu.Unlock()
	if call != "" {
		l := m.liveLog(call, now)
		if l == nil {
			return nil, nil
		}
		i := l.after(after)
		out := make([]AgentMessage, 0, len(l.msgs)-i)
		for _, msg := range l.msgs[i:] {
			out = append(out, cloneMessage(msg))
		}
		return out, nil
	}
	return m.sinceAllLocked(after, now), nil
}

// sinceAllLocked returns every held message after id, in id order. m.lmu is held.
func (m *Memory) sinceAllLocked(after EventID, now time.Time) []AgentMessage {
	m.sweepCalls(now, true)
	type entry struct {
		id  EventID
		msg *AgentMessage
	}
	var all []entry
	for _, l := range m.calls {
		for i := l.after(after); i < len(l.msgs); i++ {
			all = append(all, entry{l.ids[i], &l.msgs[i]})
		}
	}
	slices.SortFunc(all, func(a, b entry) int { return a.id.Compare(b.id) })
	out := make([]AgentMessage, len(all))
	for i, e := range all {
		out[i] = cloneMessage(*e.msg)
	}
	return out
}

// Watch implements AgentWatcher: the feed yields every message appended after Watch
// returned, in event id order (Memory's ids increase across calls too). A reader that falls
// more than a few thousand messages behind is served from the log itself, so nothing is lost
// unless it expired meanwhile.
func (m *Memory) Watch(ctx context.Context) (AgentFeed, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f := &memFeed{m: m, wake: make(chan struct{}, 1), done: make(chan struct{})}
	m.lmu.Lock()
	f.last = m.last
	m.feeds[f] = struct{}{}
	m.lmu.Unlock()
	return f, nil
}

// memFeed is a Memory's AgentFeed.
type memFeed struct {
	m         *Memory
	wake      chan struct{} // cap 1: something was appended
	done      chan struct{} // closed by Close
	closeOnce sync.Once

	// Guarded by m.lmu.
	queue    []AgentMessage
	overflow bool    // the queue was dropped: read the log after last instead
	last     EventID // id of the last message handed out
}

// enqueueLocked queues msg for the reader. m.lmu is held.
func (f *memFeed) enqueueLocked(msg AgentMessage) {
	if !f.overflow {
		if len(f.queue) >= f.m.feedQueue {
			f.overflow, f.queue = true, nil
		} else {
			f.queue = append(f.queue, cloneMessage(msg))
		}
	}
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Next implements AgentFeed.
func (f *memFeed) Next(ctx context.Context) ([]AgentMessage, error) {
	for {
		select {
		case <-f.done:
			return nil, ErrClosed
		default:
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if msgs := f.take(); len(msgs) > 0 {
			return msgs, nil
		}
		select {
		case <-f.wake:
		case <-f.done:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (f *memFeed) take() []AgentMessage {
	m := f.m
	m.lmu.Lock()
	defer m.lmu.Unlock()
	var out []AgentMessage
	if f.overflow {
		f.overflow = false
		out = m.sinceAllLocked(f.last, m.now())
	} else {
		out, f.queue = f.queue, nil
	}
	if n := len(out); n > 0 {
		if id, err := ParseEventID(out[n-1].ID); err == nil {
			f.last = id
		}
	}
	return out
}

// Close implements AgentFeed.
func (f *memFeed) Close() error {
	f.closeOnce.Do(func() {
		close(f.done)
		f.m.lmu.Lock()
		delete(f.m.feeds, f)
		f.queue = nil
		f.m.lmu.Unlock()
	})
	return nil
}

// Calls returns the ids of the calls whose logs are held (live, or ended within the
// retention), in the order their first message was stored.
func (m *Memory) Calls(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.now()
	m.lmu.Lock()
	defer m.lmu.Unlock()
	m.sweepCalls(now, true)
	type first struct {
		call string
		id   EventID
	}
	fs := make([]first, 0, len(m.calls))
	for c, l := range m.calls {
		fs = append(fs, first{c, l.ids[0]})
	}
	slices.SortFunc(fs, func(a, b first) int { return a.id.Compare(b.id) })
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.call
	}
	return out, nil
}

// liveLog returns call's log unless it expired (dropping it then). m.lmu is held.
func (m *Memory) liveLog(call string, now time.Time) *callLog {
	l := m.calls[call]
	if l != nil && m.expired(l, now) {
		delete(m.calls, call)
		return nil
	}
	return l
}

func (m *Memory) expired(l *callLog, now time.Time) bool {
	if !l.ended.IsZero() {
		return now.Sub(l.ended) >= m.retention
	}
	return now.Sub(l.last) >= m.idle
}

func (m *Memory) sweepCalls(now time.Time, force bool) {
	if !force && now.Sub(m.lSweptAt) < sweepInterval {
		return
	}
	m.lSweptAt = now
	for c, l := range m.calls {
		if m.expired(l, now) {
			delete(m.calls, c)
		}
	}
}

// after returns the index of the first message whose id is greater than id.
func (l *callLog) after(id EventID) int {
	i, found := slices.BinarySearchFunc(l.ids, id, EventID.Compare)
	if found {
		i++
	}
	return i
}

func cloneMessage(m AgentMessage) AgentMessage {
	m.AMR = slices.Clone(m.AMR)
	return m
}
