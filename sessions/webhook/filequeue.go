package webhook

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// File names under the data directory.
const (
	QueueFileName = "webhook-queue.jsonl"
	queueLockName = "webhook-queue.lock"
)

// DefaultMaxDead bounds the dead-letter list of a FileQueue; the oldest go first.
const DefaultMaxDead = 10000

// QueueOption configures a FileQueue.
type QueueOption func(*FileQueue)

// WithQueueLogger sets the queue's logger (nil means none). Logs carry delivery ids, hosts
// and counts, never a body.
func WithQueueLogger(l *zap.Logger) QueueOption {
	return func(q *FileQueue) {
		if l != nil {
			q.log = l.Named("webhook")
		}
	}
}

// WithMaxDead bounds the dead-letter list (at least 1). Default 10000.
func WithMaxDead(n int) QueueOption { return func(q *FileQueue) { q.maxDead = n } }

// FileQueue is the embedded Queue: a journal of operations, one JSON object per line, in
// <dir>/webhook-queue.jsonl. Every operation is written and fsynced before it returns; the
// journal is rewritten as a snapshot of the live and dead deliveries when it holds more than
// twice their number of lines (and on open). Leases live in memory only: after a restart every
// live delivery is due again at its NextAt. The file holds bodies, and so tokens, unless the
// Dispatcher seals them: it is created 0600 in the data directory, next to the signing key.
type FileQueue struct {
	dir, path string
	log       *zap.Logger
	maxDead   int
	sync      func(*os.File) error
	unlock    func() error

	mu        sync.Mutex
	f         *os.File
	size      int64
	lines     int
	items     map[string]*item
	seq       uint64
	delivered uint64
	err       error // sticky: fsync failed, the file's state is unknown
	closed    bool
	lastNow   time.Time // the latest now given to Lease: Stats' clock for leases
}

var _ Queue = (*FileQueue)(nil)

type item struct {
	Delivery
	seq         uint64
	leasedUntil time.Time
}

// op is one journal line.
type op struct {
	Op        string    `json:"op"` // put, retry, dead, ack, requeue, drop, meta
	D         *Delivery `json:"d,omitempty"`
	ID        string    `json:"id,omitempty"`
	At        time.Time `json:"at,omitzero"`
	Err       string    `json:"err,omitempty"`
	Delivered uint64    `json:"delivered,omitempty"`
}

// OpenFileQueue opens (creating it and dir if needed) the queue in dir, takes its lock,
// replays the journal and compacts it. A line cut short by a crash is dropped; a line that
// does not parse is logged and skipped.
func OpenFileQueue(dir string, opts ...QueueOption) (*FileQueue, error) {
	q := &FileQueue{dir: dir, path: filepath.Join(dir, QueueFileName), log: zap.NewNop(), maxDead: DefaultMaxDead,
		sync: (*os.File).Sync, items: map[string]*item{}}
	for _, o := range opts {
		o(q)
	}
	if q.maxDead < 1 {
		return nil, fmt.Errorf("%w: max dead %d: want at least 1", ErrInvalidConfig, q.maxDead)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: create data directory: %v", ErrUnavailable, err)
	}
	unlock, err := lockFile(filepath.Join(dir, queueLockName))
	if err != nil {
		return nil, err
	}
	q.unlock = unlock
	if err := q.replay(); err != nil {
		_ = unlock()
		return nil, err
	}
	if err := q.compact(); err != nil {
		_ = unlock()
		return nil, err
	}
	st := q.stats()
	q.log.Info("webhook: queue opened", zap.String("file", q.path), zap.Int("pending", st.Pending),
		zap.Int("retrying", st.Retrying), zap.Int("dead", st.Dead))
	return q, nil
}

func (q *FileQueue) replay() error {
	data, err := os.ReadFile(q.path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("%w: read journal: %v", ErrUnavailable, err)
	}
	lines := bytes.Split(data, []byte("\n"))
	if last := lines[len(lines)-1]; len(last) > 0 {
		q.log.Warn("webhook: dropping a journal line cut short by a crash", zap.Int("line", len(lines)), zap.Int("bytes", len(last)))
	}
	for i, line := range lines[:len(lines)-1] {
		var o op
		if err := json.Unmarshal(line, &o); err != nil || !q.apply(o) {
			q.log.Error("webhook: skipping a journal line that does not parse", zap.Int("line", i+1))
		}
	}
	return nil
}

// apply changes the in-memory state; it reports false for an operation that makes no sense.
func (q *FileQueue) apply(o op) bool {
	if o.Op == "meta" {
		q.delivered = o.Delivered
		return true
	}
	if o.Op == "put" {
		if o.D == nil || o.D.ID == "" {
			return false
		}
		q.seq++
		q.items[o.D.ID] = &item{Delivery: *o.D, seq: q.seq}
		return true
	}
	it, ok := q.items[o.ID]
	if !ok {
		return false
	}
	it.leasedUntil = time.Time{}
	switch o.Op {
	case "retry":
		it.Attempts++
		it.NextAt, it.LastError = o.At, o.Err
	case "dead":
		it.Attempts++
		it.Dead, it.LastError = true, o.Err
	case "ack":
		delete(q.items, o.ID)
		q.delivered++
	case "requeue":
		it.Dead, it.Attempts, it.NextAt, it.LastError = false, 0, o.At, ""
	case "drop":
		delete(q.items, o.ID)
	default:
		return false
	}
	return true
}

// write journals o, then applies it.
func (q *FileQueue) write(o op) error {
	if q.closed {
		return ErrClosed
	}
	if q.err != nil {
		return q.err
	}
	b, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("%w: encode: %v", ErrUnavailable, err)
	}
	b = append(b, '\n')
	if _, err := q.f.Write(b); err != nil {
		if terr := q.f.Truncate(q.size); terr != nil {
			q.err = fmt.Errorf("%w: write failed and could not be undone: %v", ErrUnavailable, terr)
			q.log.Error("webhook: queue write failed; refusing further writes until reopened", zap.Error(err))
		}
		return fmt.Errorf("%w: write: %v", ErrUnavailable, err)
	}
	if err := q.sync(q.f); err != nil {
		q.err = fmt.Errorf("%w: fsync: %v", ErrUnavailable, err)
		q.log.Error("webhook: queue fsync failed; refusing further writes until reopened", zap.Error(err))
		return q.err
	}
	q.size += int64(len(b))
	q.lines++
	q.apply(o)
	if q.lines > 2*len(q.items)+1024 {
		if err := q.compact(); err != nil {
			q.log.Warn("webhook: queue compaction failed; the journal keeps growing", zap.Error(err))
		}
	}
	return nil
}

// compact rewrites the journal as a snapshot: a meta line and one put per delivery.
func (q *FileQueue) compact() error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	_ = enc.Encode(op{Op: "meta", Delivered: q.delivered})
	for _, it := range q.sorted(func(*item) bool { return true }) {
		d := it.Delivery
		_ = enc.Encode(op{Op: "put", D: &d})
	}
	tmp := q.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("%w: compact: %v", ErrUnavailable, err)
	}
	_, err = f.Write(b.Bytes())
	if err == nil {
		err = q.sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, q.path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("%w: compact: %v", ErrUnavailable, err)
	}
	if d, err := os.Open(q.dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	nf, err := os.OpenFile(q.path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		q.err = fmt.Errorf("%w: reopen after compaction: %v", ErrUnavailable, err)
		return q.err
	}
	if q.f != nil {
		_ = q.f.Close()
	}
	q.f, q.size, q.lines = nf, int64(b.Len()), 1+len(q.items)
	return nil
}

// sorted returns the items keep selects, oldest first.
func (q *FileQueue) sorted(keep func(*item) bool) []*item {
	out := make([]*item, 0, len(q.items))
	for _, it := range q.items {
		if keep(it) {
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(a, b *item) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// Enqueue implements Queue.
func (q *FileQueue) Enqueue(ctx context.Context, d Delivery) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.ID == "" {
		d.ID = newDeliveryID()
	}
	d.Dead, d.Body = false, bytes.Clone(d.Body)
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, dup := q.items[d.ID]; dup {
		return fmt.Errorf("%w: delivery id %s already queued", ErrUnavailable, d.ID)
	}
	return q.write(op{Op: "put", D: &d})
}

// Lease implements Queue.
func (q *FileQueue) Lease(ctx context.Context, now time.Time, ttl time.Duration) (*Delivery, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return nil, time.Time{}, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, time.Time{}, ErrClosed
	}
	if now.After(q.lastNow) {
		q.lastNow = now
	}
	var best *item
	var next time.Time
	for _, it := range q.items {
		switch {
		case it.Dead, it.leasedUntil.After(now):
		case it.NextAt.After(now):
			if next.IsZero() || it.NextAt.Before(next) {
				next = it.NextAt
			}
		case best == nil, it.NextAt.Before(best.NextAt), it.NextAt.Equal(best.NextAt) && it.seq < best.seq:
			best = it
		}
	}
	if best == nil {
		return nil, next, nil
	}
	best.leasedUntil = now.Add(ttl)
	d := best.Delivery
	d.Body = bytes.Clone(d.Body)
	return &d, time.Time{}, nil
}

func (q *FileQueue) live(id string) bool {
	it, ok := q.items[id]
	return ok && !it.Dead
}

// Ack implements Queue.
func (q *FileQueue) Ack(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.live(id) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return q.write(op{Op: "ack", ID: id})
}

// Retry implements Queue.
func (q *FileQueue) Retry(_ context.Context, id string, at time.Time, lastErr string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.live(id) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return q.write(op{Op: "retry", ID: id, At: at.UTC(), Err: lastErr})
}

// DeadLetter implements Queue. Beyond the dead-letter bound, the oldest dead delivery is
// dropped (and logged).
func (q *FileQueue) DeadLetter(_ context.Context, id string, lastErr string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.live(id) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err := q.write(op{Op: "dead", ID: id, Err: lastErr}); err != nil {
		return err
	}
	dead := q.sorted(func(it *item) bool { return it.Dead })
	for _, it := range dead[:max(0, len(dead)-q.maxDead)] {
		q.log.Warn("webhook: dead-letter list full, dropping the oldest", zap.String("delivery", it.ID), zap.String("key", it.Key))
		if err := q.write(op{Op: "drop", ID: it.ID}); err != nil {
			return nil // the dead letter itself is recorded
		}
	}
	return nil
}

// Stats implements Queue.
func (q *FileQueue) Stats(context.Context) (QueueStats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stats(), nil
}

func (q *FileQueue) stats() QueueStats {
	s := QueueStats{Delivered: q.delivered}
	for _, it := range q.items {
		switch {
		case it.Dead:
			s.Dead++
		case it.leasedUntil.After(q.lastNow):
			s.Leased++
		case it.Attempts == 0:
			s.Pending++
		default:
			s.Retrying++
		}
	}
	return s
}

// DeadLetters lists the dead-letter list, oldest first, bodies omitted.
func (q *FileQueue) DeadLetters(context.Context) ([]Delivery, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Delivery
	for _, it := range q.sorted(func(it *item) bool { return it.Dead }) {
		d := it.Delivery
		d.Body = nil
		out = append(out, d)
	}
	return out, nil
}

// Requeue moves a dead delivery back to the queue, due at now, with its attempts reset.
func (q *FileQueue) Requeue(_ context.Context, id string, now time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it, ok := q.items[id]; !ok || !it.Dead {
		return fmt.Errorf("%w: no dead delivery %s", ErrNotFound, id)
	}
	return q.write(op{Op: "requeue", ID: id, At: now.UTC()})
}

// Close closes the journal and releases the lock. It is idempotent.
func (q *FileQueue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	err := q.f.Close()
	if uerr := q.unlock(); err == nil {
		err = uerr
	}
	return err
}

var _ io.Closer = (*FileQueue)(nil)
