package webhook

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Dispatcher defaults.
const (
	DefaultWorkers      = 4
	DefaultPollInterval = time.Second
	// leaseSlack is added to Config.Timeout for a lease: a delivery is never leased twice
	// while an attempt at it may still be running.
	leaseSlack = 30 * time.Second
	maxDrain   = 64 << 10
)

// Option configures a Dispatcher.
type Option func(*Dispatcher)

// WithLogger sets the logger (nil means none). Logs carry delivery ids, event ids (jti), hosts
// and statuses, never a body, token, secret or full URL.
func WithLogger(l *zap.Logger) Option {
	return func(d *Dispatcher) {
		if l != nil {
			d.log = l.Named("webhook")
		}
	}
}

// WithHTTPClient sets the client. Default: a client on a clone of http.DefaultTransport.
// Redirects are never followed, whatever the client's CheckRedirect says: a redirect must not
// carry a token to another address.
func WithHTTPClient(c *http.Client) Option { return func(d *Dispatcher) { d.client = c } }

// WithWorkers sets how many deliveries are attempted at once (1 to 64). Default 4.
func WithWorkers(n int) Option { return func(d *Dispatcher) { d.workers = n } }

// WithPollInterval sets how often idle workers look at the queue for deliveries another
// process queued (a shared queue). Default 1 s.
func WithPollInterval(p time.Duration) Option { return func(d *Dispatcher) { d.poll = p } }

// WithClock sets the clock used for signatures and schedules. Default time.Now.
func WithClock(now func() time.Time) Option { return func(d *Dispatcher) { d.now = now } }

// WithSealKey makes Send store bodies sealed with AES-256-GCM under key (32 bytes; derive it
// from the server key), with the event id as additional data, so that the queue (a file, or
// Redis) never holds a token in clear. Deliveries queued sealed need the same key to be sent;
// without it they are dead-lettered.
func WithSealKey(key []byte) Option { return func(d *Dispatcher) { d.sealKey = bytes.Clone(key) } }

// Dispatcher delivers events through a Queue. Send may be called before Start; deliveries
// wait in the queue.
type Dispatcher struct {
	cfg     Config
	secret  []byte
	q       Queue
	client  *http.Client
	ownsCli bool
	log     *zap.Logger
	workers int
	poll    time.Duration
	now     func() time.Time
	sealKey []byte
	aead    cipher.AEAD

	mu      sync.Mutex
	notify  chan struct{}
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	enqueued, attempts, delivered, retries, dead atomic.Uint64
}

// NewDispatcher validates cfg and returns a Dispatcher on q.
func NewDispatcher(cfg Config, q Queue, opts ...Option) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if q == nil {
		return nil, fmt.Errorf("%w: no queue", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	d := &Dispatcher{cfg: cfg, secret: []byte(cfg.Secret), q: q, log: zap.NewNop(), workers: DefaultWorkers,
		poll: DefaultPollInterval, now: time.Now, notify: make(chan struct{})}
	for _, o := range opts {
		o(d)
	}
	switch {
	case d.workers < 1 || d.workers > 64:
		return nil, fmt.Errorf("%w: workers %d: want 1 to 64", ErrInvalidConfig, d.workers)
	case d.poll <= 0:
		return nil, fmt.Errorf("%w: poll interval %v: want more than 0", ErrInvalidConfig, d.poll)
	case d.now == nil:
		return nil, fmt.Errorf("%w: nil clock", ErrInvalidConfig)
	}
	if d.sealKey != nil {
		if len(d.sealKey) != 32 {
			return nil, fmt.Errorf("%w: seal key is %d bytes: want 32", ErrInvalidConfig, len(d.sealKey))
		}
		block, _ := aes.NewCipher(d.sealKey)
		d.aead, _ = cipher.NewGCM(block)
	}
	if d.client == nil {
		d.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		d.ownsCli = true
	}
	c := *d.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	d.client = &c
	return d, nil
}

// Send queues ev for every configured URL and returns once the queue holds it. An empty Type
// becomes verification.completed and a zero At now. If queuing fails for one URL after it
// succeeded for another, Send returns the error; sending again is safe, since receivers drop
// repeated idempotency keys.
func (d *Dispatcher) Send(ctx context.Context, ev Event) error {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if ev.Type == "" {
		ev.Type = TypeVerificationCompleted
	}
	now := d.now()
	if ev.At.IsZero() {
		ev.At = now
	}
	if err := ev.validate(); err != nil {
		return err
	}
	body, err := ev.Body()
	if err != nil {
		return fmt.Errorf("%w: encode: %v", ErrInvalidEvent, err)
	}
	sealed := false
	if d.aead != nil {
		body, sealed = d.seal(body, ev.ID), true
	}
	for _, u := range d.cfg.URLs {
		dl := Delivery{ID: newDeliveryID(), URL: u, Key: ev.ID, Body: body, Sealed: sealed, Created: now.UTC(), NextAt: now.UTC()}
		if err := d.q.Enqueue(ctx, dl); err != nil {
			return fmt.Errorf("webhook: queue event %s for %s: %w", ev.ID, hostOf(u), err)
		}
		d.enqueued.Add(1)
	}
	d.wake()
	return nil
}

func (d *Dispatcher) seal(body []byte, key string) []byte {
	nonce := make([]byte, d.aead.NonceSize(), d.aead.NonceSize()+len(body)+d.aead.Overhead())
	_, _ = cryptoRead(nonce)
	return d.aead.Seal(nonce, nonce, body, []byte(key))
}

func (d *Dispatcher) open(sealed []byte, key string) ([]byte, error) {
	if d.aead == nil {
		return nil, errors.New("sealed body and no seal key")
	}
	n := d.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed body too short")
	}
	body, err := d.aead.Open(nil, sealed[:n], sealed[n:], []byte(key))
	if err != nil {
		return nil, errors.New("sealed body does not open with this key")
	}
	return body, nil
}

var cryptoRead = crand.Read

// Start starts the workers; they run until ctx ends or Close. A Dispatcher starts once.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return ErrClosed
	case d.started:
		return ErrStarted
	}
	d.started = true
	ctx, d.cancel = context.WithCancel(ctx)
	for range d.workers {
		d.wg.Go(func() { d.work(ctx) })
	}
	return nil
}

// Close stops the workers and waits for them; an attempt in flight is cancelled and its
// delivery stays leased, to be sent again after the lease (or a restart). Idempotent.
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	d.closed = true
	cancel := d.cancel
	d.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	d.wg.Wait()
	if d.ownsCli {
		d.client.CloseIdleConnections()
	}
	return nil
}

func (d *Dispatcher) wake() {
	d.mu.Lock()
	close(d.notify)
	d.notify = make(chan struct{})
	d.mu.Unlock()
}

func (d *Dispatcher) woken() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.notify
}

func (d *Dispatcher) work(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		woken := d.woken() // before Lease, so that a Send during Lease is not missed
		now := d.now()
		dl, next, err := d.q.Lease(ctx, now, d.cfg.Timeout+leaseSlack)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, ErrClosed) {
				d.log.Warn("webhook: lease failed", zap.Error(err))
			}
			next = time.Time{}
		}
		if dl != nil {
			d.deliver(ctx, dl)
			continue
		}
		wait := d.poll
		if !next.IsZero() {
			wait = min(wait, next.Sub(now))
		}
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
		case <-woken:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// deliver makes one attempt and records its result in the queue.
func (d *Dispatcher) deliver(ctx context.Context, dl *Delivery) {
	log := d.log.With(zap.String("delivery", dl.ID), zap.String("key", dl.Key), zap.String("host", hostOf(dl.URL)),
		zap.Int("attempt", dl.Attempts+1))
	body := dl.Body
	if dl.Sealed {
		var err error
		if body, err = d.open(dl.Body, dl.Key); err != nil {
			d.finish(ctx, log, dl, err.Error(), false, 0)
			return
		}
	}
	d.attempts.Add(1)
	status, retryAfter, reason := d.post(ctx, dl, body)
	switch {
	case ctx.Err() != nil:
		// Shutting down: leave it leased; it is sent again after the lease or a restart.
		return
	case status >= 200 && status <= 299:
		if err := d.q.Ack(context.WithoutCancel(ctx), dl.ID); err != nil {
			log.Warn("webhook: delivered, but the queue did not record it; it will be sent again", zap.Error(err))
			return
		}
		d.delivered.Add(1)
		log.Info("webhook: delivered", zap.Int("status", status))
	default:
		retryable := status == 0 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
		d.finish(ctx, log, dl, reason, retryable, retryAfter)
	}
}

// finish retries or dead-letters a failed attempt.
func (d *Dispatcher) finish(ctx context.Context, log *zap.Logger, dl *Delivery, reason string, retryable bool, retryAfter time.Duration) {
	ctx = context.WithoutCancel(ctx)
	attempt := dl.Attempts + 1
	if !retryable || attempt >= d.cfg.MaxAttempts {
		if err := d.q.DeadLetter(ctx, dl.ID, reason); err != nil {
			log.Error("webhook: could not dead-letter a delivery", zap.String("reason", reason), zap.Error(err))
			return
		}
		d.dead.Add(1)
		log.Warn("webhook: delivery dead-lettered", zap.String("reason", reason), zap.Bool("retryable", retryable))
		return
	}
	wait := d.backoff(attempt)
	if retryAfter > wait {
		wait = min(retryAfter, MaxRetryAfter)
	}
	at := d.now().Add(wait)
	if err := d.q.Retry(ctx, dl.ID, at, reason); err != nil {
		log.Error("webhook: could not schedule a retry", zap.String("reason", reason), zap.Error(err))
		return
	}
	d.retries.Add(1)
	log.Warn("webhook: delivery failed, will retry", zap.String("reason", reason), zap.Duration("in", wait))
}

// backoff draws the wait before attempt n+1 uniformly from [0, min(MaxBackoff, Base·2^(n−1))].
func (d *Dispatcher) backoff(n int) time.Duration {
	ceil := d.cfg.BaseBackoff
	for i := 1; i < n && ceil < d.cfg.MaxBackoff; i++ {
		ceil *= 2
	}
	ceil = min(ceil, d.cfg.MaxBackoff)
	if ceil <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}

// post makes the HTTP request. It returns the status (0 for a network error), the
// Retry-After the receiver asked for, and a reason for the queue and the logs.
func (d *Dispatcher) post(ctx context.Context, dl *Delivery, body []byte) (int, time.Duration, string) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, "bad request"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "callproof-webhook")
	req.Header.Set(SignatureHeader, Sign(d.secret, d.now(), body))
	req.Header.Set(IdempotencyHeader, dl.Key)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, 0, netReason(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), d.now()), "HTTP " + strconv.Itoa(resp.StatusCode)
}

// netReason names a network failure without the URL (which url.Error repeats).
func netReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	default:
		var dns *net.DNSError
		if errors.As(err, &dns) {
			return "dns error"
		}
		return "network error"
	}
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 §10.2.3); 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0
		}
		return min(time.Duration(min(s, int64(MaxRetryAfter/time.Second)))*time.Second, MaxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), MaxRetryAfter)
	}
	return 0
}

// Stats are a Dispatcher's counters since it was created, with its queue's gauges.
type Stats struct {
	// Queue gauges: pending, retrying, leased (in flight), dead; delivered since the queue
	// was created.
	Queue QueueStats
	// Counters since NewDispatcher: events' deliveries queued, attempts made, deliveries
	// acknowledged, retries scheduled, deliveries dead-lettered.
	Enqueued, Attempts, Delivered, Retries, DeadLettered uint64
}

// Stats returns the counters and the queue's gauges, for metrics.
func (d *Dispatcher) Stats(ctx context.Context) (Stats, error) {
	qs, err := d.q.Stats(ctx)
	return Stats{Queue: qs, Enqueued: d.enqueued.Load(), Attempts: d.attempts.Load(), Delivered: d.delivered.Load(),
		Retries: d.retries.Load(), DeadLettered: d.dead.Load()}, err
}
