package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// File names under the data directory.
const (
	FileName = "audit.jsonl"
	lockName = "audit.lock"
)

// Defaults for the options.
const (
	// DefaultMaxBatch bounds the records one group commit writes.
	DefaultMaxBatch = 256
	// DefaultDedupWindow is how many recent record ids Append remembers to drop a repeat.
	DefaultDedupWindow = 4096
)

type options struct {
	log       *zap.Logger
	retention Retention
	maxBatch  int
	dedup     int
}

// Option configures a Log.
type Option func(*options)

// WithLogger sets the logger (nil means none). Lines logged carry record ids, counts and
// offsets, never a record's content.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// WithRetention sets how long Prune keeps records. Default DefaultRetention (24 months);
// less than 24 months is refused.
func WithRetention(r Retention) Option { return func(o *options) { o.retention = r } }

// WithMaxBatch bounds the records written by one write+fsync (1 to 65536). Default 256.
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = n } }

// WithDedupWindow sets how many recent record ids Append remembers (1 to 1<<20); a record
// whose id is among them is acknowledged without being written again. Default 4096.
func WithDedupWindow(n int) Option { return func(o *options) { o.dedup = n } }

// Log is the hash-chained audit file of one data directory, with one writer goroutine that
// group-commits appends. It is safe for concurrent use. *Log implements Sink.
type Log struct {
	dir, path string
	opts      options
	log       *zap.Logger
	unlock    func() error
	sync      func(*os.File) error // (*os.File).Sync; replaced by tests

	reqs     chan *appendReq
	ctl      chan ctlReq
	closing  chan struct{}
	finished chan struct{}
	once     sync.Once
	closeErr error

	// Owned by the writer goroutine after Open.
	f      *os.File
	err    error                 // sticky write failure
	failed atomic.Pointer[error] // err, for readers outside the writer
	recent *idRing

	pruneMu sync.Mutex // one Prune at a time

	mu   sync.Mutex // guards head and size for Stats
	head string
	size int64

	appended, commits, dups atomic.Uint64
}

var _ Sink = (*Log)(nil)

type appendReq struct {
	canon [][]byte
	ids   []string
	done  chan error
}

type ctlReq struct {
	fn   func()
	done chan struct{}
}

// Open opens (creating it and dir if needed) <dir>/audit.jsonl, takes the directory's lock,
// checks every line's hash and link, recovers from a crash (see the package doc), and starts
// the writer. The check at Open works on the bytes, without decoding records (about ten times
// faster than Verify, which also checks each line's form and fields): any edit to a line still
// breaks its hash or a link. A chain that is bad anywhere but its last line fails Open with a
// *LineError.
func Open(dir string, opts ...Option) (*Log, error) {
	o := options{retention: DefaultRetention, maxBatch: DefaultMaxBatch, dedup: DefaultDedupWindow}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = zap.NewNop()
	}
	switch {
	case o.maxBatch < 1 || o.maxBatch > 1<<16:
		return nil, fmt.Errorf("%w: max batch %d: want 1 to 65536", ErrInvalidConfig, o.maxBatch)
	case o.dedup < 1 || o.dedup > 1<<20:
		return nil, fmt.Errorf("%w: dedup window %d: want 1 to 1048576", ErrInvalidConfig, o.dedup)
	}
	if err := o.retention.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: create data directory: %v", ErrUnavailable, err)
	}
	unlock, err := lockFile(filepath.Join(dir, lockName))
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, path: filepath.Join(dir, FileName), opts: o, log: o.log.Named("audit"),
		unlock: unlock, sync: (*os.File).Sync, reqs: make(chan *appendReq, o.maxBatch),
		ctl: make(chan ctlReq), closing: make(chan struct{}), finished: make(chan struct{}),
		recent: newIDRing(o.dedup)}
	if err := l.recover(); err != nil {
		if l.f != nil {
			_ = l.f.Close()
		}
		_ = unlock()
		return nil, err
	}
	go l.run()
	return l, nil
}

// recover opens the file, verifies it and cuts a damaged last line.
func (l *Log) recover() error {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%w: open: %v", ErrUnavailable, err)
	}
	l.f = f
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: stat: %v", ErrUnavailable, err)
	}
	size := st.Size()
	v := newVerifier()
	v.fast = true
	err = v.scan(io.NewSectionReader(f, 0, size), func(li lineInfo) error {
		if li.id != "" {
			l.recent.add(li.id)
		}
		return nil
	})
	var le *LineError
	switch {
	case err == nil:
	case errors.As(err, &le) && l.isTail(le, size):
		if err := f.Truncate(le.Offset); err != nil {
			return fmt.Errorf("%w: cut damaged last line: %v", ErrUnavailable, err)
		}
		if err := l.sync(f); err != nil {
			return fmt.Errorf("%w: sync: %v", ErrUnavailable, err)
		}
		l.log.Warn("audit: cut a damaged last line left by a crash; the chain continues from the line before",
			zap.Int("line", le.Line), zap.Int64("offset", le.Offset), zap.Int64("bytes_cut", size-le.Offset),
			zap.String("reason", le.Err.Error()))
		size = le.Offset
	case errors.As(err, &le):
		return fmt.Errorf("audit: %s: %w (run `callproof audit verify`; the log was not changed)", l.path, err)
	default:
		return fmt.Errorf("%w: read: %v", ErrUnavailable, err)
	}
	l.head, l.size = v.expect, size
	l.log.Info("audit: log opened", zap.String("file", l.path), zap.Int("records", v.records),
		zap.Bool("pruned", v.cp != nil), zap.String("head", l.head))
	return nil
}

// isTail reports whether the bad line is the file's last: a cut-off line, or a whole line
// with nothing after it.
func (l *Log) isTail(le *LineError, size int64) bool {
	if errors.Is(le.Err, ErrTruncated) {
		return true
	}
	if errors.Is(le.Err, ErrLineTooLong) {
		return false
	}
	// Find the end of the bad line: it is the last line when its newline ends the file.
	buf := make([]byte, min(size-le.Offset, MaxLineBytes))
	n, _ := l.f.ReadAt(buf, le.Offset)
	i := bytes.IndexByte(buf[:n], '\n')
	return i >= 0 && le.Offset+int64(i)+1 == size
}

// Append writes r to the chain and returns once it is on disk (written and fsynced together
// with whatever other appends were waiting). An empty Channel becomes "ivr". A record whose
// id is among the last DedupWindow ids is acknowledged without a second line. If ctx ends
// first, Append returns its error and the record may still be written.
func (l *Log) Append(ctx context.Context, r Record) error {
	return l.AppendBatch(ctx, []Record{r})
}

// AppendBatch writes records in order in one commit: all of them or, on error, none that
// Append would report as written. Forward uses it for a batch read from a shared stream.
func (l *Log) AppendBatch(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	req := &appendReq{canon: make([][]byte, len(recs)), ids: make([]string, len(recs)), done: make(chan error, 1)}
	for i, r := range recs {
		if r.Channel == "" {
			r.Channel = "ivr"
		}
		if err := r.Validate(); err != nil {
			return err
		}
		b, err := json.Marshal(r.wire())
		if err != nil {
			return fmt.Errorf("%w: encode: %v", ErrInvalidRecord, err)
		}
		req.canon[i], req.ids[i] = b, r.ID
	}
	select {
	case <-l.closing:
		return ErrClosed
	default:
	}
	select {
	case l.reqs <- req:
	case <-l.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-l.finished:
		select {
		case err := <-req.done:
			return err
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		return fmt.Errorf("audit: append: %w (the record may still be written)", ctx.Err())
	}
}

// run is the writer goroutine: it owns the file.
func (l *Log) run() {
	defer close(l.finished)
	batch := make([]*appendReq, 0, l.opts.maxBatch)
	var buf bytes.Buffer
	for {
		select {
		case r := <-l.reqs:
			batch = l.gather(append(batch[:0], r))
			l.commit(batch, &buf)
		case c := <-l.ctl:
			c.fn()
			close(c.done)
		case <-l.closing:
			for {
				batch = l.gather(batch[:0])
				if len(batch) == 0 {
					break
				}
				l.commit(batch, &buf)
			}
			l.closeErr = l.f.Close()
			if err := l.unlock(); l.closeErr == nil {
				l.closeErr = err
			}
			return
		}
	}
}

// gather adds every append already waiting, up to the batch bound (in records).
func (l *Log) gather(batch []*appendReq) []*appendReq {
	n := 0
	for _, r := range batch {
		n += len(r.ids)
	}
	for n < l.opts.maxBatch {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
			n += len(r.ids)
		default:
			return batch
		}
	}
	return batch
}

// commit writes the batch's lines in one write and one fsync, then answers every append.
func (l *Log) commit(batch []*appendReq, buf *bytes.Buffer) {
	reply := func(err error) {
		for _, r := range batch {
			r.done <- err
		}
	}
	if l.err != nil {
		reply(l.err)
		return
	}
	buf.Reset()
	head := l.head
	var ids []string
	inBatch := map[string]struct{}{}
	for _, r := range batch {
		for i, canon := range r.canon {
			id := r.ids[i]
			if _, dup := inBatch[id]; dup || l.recent.has(id) {
				l.dups.Add(1)
				continue
			}
			inBatch[id] = struct{}{}
			h := chainHash(head, canon)
			writeLine(buf, canon, head, h)
			head = h
			ids = append(ids, id)
		}
	}
	if buf.Len() > 0 {
		if _, err := l.f.Write(buf.Bytes()); err != nil {
			l.fail("write", err)
			reply(l.err)
			return
		}
		if err := l.sync(l.f); err != nil {
			l.fail("fsync", err)
			reply(l.err)
			return
		}
		for _, id := range ids {
			l.recent.add(id)
		}
		l.mu.Lock()
		l.head, l.size = head, l.size+int64(buf.Len())
		l.mu.Unlock()
		l.appended.Add(uint64(len(ids)))
		l.commits.Add(1)
	}
	reply(nil)
}

// fail makes a write failure sticky: after a failed write or fsync what reached the disk is
// unknown, so nothing more is appended until the log is reopened (and recovered).
func (l *Log) fail(op string, err error) {
	l.err = fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
	stored := l.err
	l.failed.Store(&stored)
	l.log.Error("audit: log write failed; refusing further appends until reopened", zap.String("op", op), zap.Error(err))
}

// Prune removes the records that expired at now (see Retention and the package doc) and
// returns how many it removed. It verifies the whole chain (strictly, as Verify does) and
// refuses to rewrite a file that does not verify. The long part, verifying and copying the
// file as it was when Prune began, runs in the caller's goroutine while appends go on; appends
// wait only while the lines added meanwhile are verified and copied and the file is swapped.
// Prunes run one at a time.
func (l *Log) Prune(ctx context.Context, now time.Time) (int, error) {
	l.pruneMu.Lock()
	defer l.pruneMu.Unlock()
	select {
	case <-l.closing:
		return 0, ErrClosed
	default:
	}
	if err := l.failed.Load(); err != nil {
		return 0, *err
	}
	l.mu.Lock()
	size := l.size // whole lines only: size moves after each commit's fsync
	l.mu.Unlock()
	src, err := os.Open(l.path)
	if err != nil {
		return 0, fmt.Errorf("%w: prune: %v", ErrUnavailable, err)
	}
	defer src.Close()

	// Phase 1, beside the writer: verify [0, size) and find the expired prefix.
	p := &pruner{cutoff: l.opts.retention.Cutoff(now), v: newVerifier(), inPrefix: true}
	lines := 0
	err = p.v.scan(io.NewSectionReader(src, 0, size), func(li lineInfo) error {
		if lines++; lines%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		p.visit(li)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("audit: prune refused, the chain does not verify: %w", err)
	}
	if p.pruned == 0 {
		return 0, nil
	}
	p.cp.Pruned += p.pruned
	p.cp.At = now.UTC()
	tmpPath := l.path + ".tmp"
	tmp, err := os.OpenFile(tmpPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("%w: prune: %v", ErrUnavailable, err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmpPath)
		}
	}()
	var b bytes.Buffer
	canon := p.cp.canonical()
	writeLine(&b, canon, p.cp.Prev, chainHash(p.cp.Prev, canon))
	if _, err := tmp.Write(b.Bytes()); err != nil {
		return 0, fmt.Errorf("%w: prune: %v", ErrUnavailable, err)
	}
	if _, err := io.Copy(tmp, io.NewSectionReader(src, p.keepFrom, size-p.keepFrom)); err != nil {
		return 0, fmt.Errorf("%w: prune: %v", ErrUnavailable, err)
	}

	// Phase 2, in the writer: add what was appended meanwhile, then swap the files.
	var n int
	req := ctlReq{fn: func() {
		n, err = l.swapPruned(p, tmp, size)
		done = err == nil
	}, done: make(chan struct{})}
	select {
	case l.ctl <- req:
	case <-l.closing:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	<-req.done
	return n, err
}

// pruner finds the expired prefix of a chain.
type pruner struct {
	cutoff   time.Time
	v        *verifier
	inPrefix bool
	keepFrom int64 // offset of the first kept line
	pruned   int
	cp       Checkpoint
}

func (p *pruner) visit(li lineInfo) {
	switch {
	case !p.inPrefix:
	case li.checkpoint != nil:
		p.cp, p.keepFrom = *li.checkpoint, li.end
	case expired(li.rec, p.cutoff):
		p.pruned++
		p.cp.Prev, p.keepFrom = li.hash, li.end
		p.cp.Through = later(p.cp.Through, later(li.rec.Received, li.rec.Responded))
	default:
		p.inPrefix = false
	}
}

// swapPruned runs in the writer: it verifies and copies [from, size) into tmp, then replaces
// the file with tmp.
func (l *Log) swapPruned(p *pruner, tmp *os.File, from int64) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	tail := io.NewSectionReader(l.f, from, l.size-from)
	if err := p.v.scan(tail, nil); err != nil {
		return 0, fmt.Errorf("audit: prune refused, the chain does not verify: %w", err)
	}
	if _, err := io.Copy(tmp, io.NewSectionReader(l.f, from, l.size-from)); err != nil {
		return 0, fmt.Errorf("%w: prune: %v", ErrUnavailable, err)
	}
	if err := l.sync(tmp); err != nil {
		return 0, fmt.Errorf("%w: prune: %v", ErrUnavailable, err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("%w: prune: %v", ErrUnavailable, err)
	}
	if err := os.Rename(tmp.Name(), l.path); err != nil {
		_ = os.Remove(tmp.Name())
		return 0, fmt.Errorf("%w: prune: %v", ErrUnavailable, err)
	}
	// From here the old handle points at the unlinked file: reopen or stop appending.
	_ = l.f.Close()
	syncDir(l.dir)
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_APPEND, 0o600)
	if err == nil {
		var st os.FileInfo
		if st, err = f.Stat(); err != nil {
			_ = f.Close()
		} else {
			l.f = f
			l.mu.Lock()
			l.size = st.Size()
			l.mu.Unlock()
		}
	}
	if err != nil {
		l.fail("reopen after prune", err)
		return p.pruned, l.err
	}
	l.log.Info("audit: pruned expired records", zap.Int("pruned", p.pruned), zap.Int("pruned_total", p.cp.Pruned),
		zap.Time("through", p.cp.Through), zap.String("retention", l.opts.retention.String()))
	return p.pruned, nil
}

func expired(r *Record, cutoff time.Time) bool {
	return later(r.Received, r.Responded).Before(cutoff)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Close writes every append already queued, closes the file and releases the lock. It is
// idempotent; later appends return ErrClosed.
func (l *Log) Close() error {
	l.once.Do(func() { close(l.closing) })
	<-l.finished
	return l.closeErr
}

// Stats are a Log's counters since Open.
type Stats struct {
	// Appended counts records written; Commits the write+fsync batches that wrote them.
	Appended, Commits uint64
	// Duplicates counts appends dropped because their id was recent.
	Duplicates uint64
	// Head is the hash the next record will link to; Size the file's length in bytes.
	Head string
	Size int64
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Appended: l.appended.Load(), Commits: l.commits.Load(), Duplicates: l.dups.Load(),
		Head: l.head, Size: l.size}
}

// Path returns the file's path.
func (l *Log) Path() string { return l.path }

// idRing remembers the last n ids.
type idRing struct {
	ids []string
	pos int
	set map[string]struct{}
}

func newIDRing(n int) *idRing {
	return &idRing{ids: make([]string, 0, n), set: make(map[string]struct{}, n)}
}

func (r *idRing) has(id string) bool { _, ok := r.set[id]; return ok }

func (r *idRing) add(id string) {
	if r.has(id) {
		return
	}
	if len(r.ids) < cap(r.ids) {
		r.ids = append(r.ids, id)
	} else {
		delete(r.set, r.ids[r.pos])
		r.ids[r.pos] = id
		r.pos = (r.pos + 1) % len(r.ids)
	}
	r.set[id] = struct{}{}
}
