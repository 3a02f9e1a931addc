package otp

import (
	"context"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Defaults for NewService.
const (
	// DefaultGlobalPerMinute and DefaultGlobalBurst size the process-wide token bucket on sends.
	DefaultGlobalPerMinute = 60
	DefaultGlobalBurst     = 20
	// DefaultDecoyLatency is the first estimate of a delivery's duration, used for the
	// no-contact path until real deliveries have been timed.
	DefaultDecoyLatency = 250 * time.Millisecond

	maxDecoyLatency = 10 * time.Second
)

// SendRequest asks for a code to be sent.
type SendRequest struct {
	// Subject is the already-hashed account key (kba.SubjectKey of the keyed account number),
	// for known and unknown accounts alike.
	Subject string
	// Call is the platform's call id; Locale the caller's language ("en-US", "es-US").
	Call, Locale string
	// Contacts are the customer's contacts from the directory, in order of preference. Only
	// contacts on file: never a number or address the caller keyed in. Empty for an unknown
	// account: Send then delivers nothing but answers as if it had.
	Contacts []Contact
}

// Sent describes a send. For an unknown account it is a decoy of the same shape.
type Sent struct {
	// Channel is the channel used.
	Channel string
	// MaskedTo is the masked destination, for the agent and logs (never for the caller
	// before verification).
	MaskedTo string
	// ExpiresAt is when the code stops being accepted.
	ExpiresAt time.Time
}

// Result is the outcome of a Check.
type Result struct {
	// OK is true when the entry matched; the code is then consumed.
	OK bool
	// Remaining is how many more wrong entries the current code takes: 0 after a success or
	// when this entry used up the last one.
	Remaining int
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger (nil: zap.NewNop()).
func WithLogger(l *zap.Logger) Option {
	return func(s *Service) {
		if l != nil {
			s.log = l
		}
	}
}

// WithClock sets the clock for expiry and rate limits (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Service) {
		if now != nil {
			s.now = now
		}
	}
}

// WithRand sets the random source for codes (default crypto/rand.Reader). It must be a
// CSPRNG; tests pass a fixed stream to know the code.
func WithRand(r io.Reader) Option {
	return func(s *Service) {
		if r != nil {
			s.rand = r
		}
	}
}

// WithGlobalLimit sets the process-wide send rate: perMinute sends per minute with bursts of
// burst (default DefaultGlobalPerMinute, DefaultGlobalBurst). perMinute <= 0 disables it.
func WithGlobalLimit(perMinute float64, burst int) Option {
	return func(s *Service) {
		if perMinute <= 0 {
			s.limiter = nil
			return
		}
		s.limiter = rate.NewLimiter(rate.Limit(perMinute/60), max(burst, 1))
	}
}

// WithDecoyLatency sets the first estimate of how long a delivery takes (default
// DefaultDecoyLatency); the no-contact path waits about that long until real deliveries have
// been timed.
func WithDecoyLatency(d time.Duration) Option {
	return func(s *Service) {
		if d >= 0 {
			s.lat.ewma = min(d, maxDecoyLatency)
		}
	}
}

// Service sends and checks one-time passcodes. It is safe for concurrent use; all state is
// in its Store, so services on several nodes sharing one store behave as one (except for
// the per-process global send rate).
type Service struct {
	cfg     Config
	store   Store
	senders Senders
	log     *zap.Logger
	now     func() time.Time
	rand    io.Reader
	limiter *rate.Limiter
	lat     latency
}

// NewService returns a service with cfg (defaults applied), store and senders, all required.
func NewService(cfg Config, store Store, senders Senders, opts ...Option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil || senders == nil {
		return nil, fmt.Errorf("%w: a store and senders are required", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	cfg.HMACKey = append([]byte(nil), cfg.HMACKey...)
	s := &Service{
		cfg:     cfg,
		store:   store,
		senders: senders,
		log:     zap.NewNop(),
		now:     time.Now,
		limiter: rate.NewLimiter(rate.Limit(float64(DefaultGlobalPerMinute)/60), DefaultGlobalBurst),
		lat:     latency{ewma: DefaultDecoyLatency},
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Config returns the policy in force (defaults applied), without the key.
func (s *Service) Config() Config {
	c := s.cfg
	c.HMACKey = nil
	return c
}

// Send issues a new code for r.Subject and delivers it to the first contact whose channel has
// a sender. It enforces, in order, the global send rate, exhausted failures, the resend gap
// and the per-subject cap, answering *RateLimitError (ErrRateLimited) when one refuses. A new
// code replaces the previous one and inherits its failure count.
//
// With no deliverable contact (an unknown account) it does the same work, waits about as long
// as a delivery takes, delivers nothing and returns a decoy Sent (see the package doc).
//
// A delivery failure returns the Sent (the code is stored and the send counted) with an
// error matching ErrDelivery. Store failures match ErrUnavailable.
func (s *Service) Send(ctx context.Context, r SendRequest) (Sent, error) {
	if err := ctx.Err(); err != nil {
		return Sent{}, err
	}
	if r.Subject == "" {
		return Sent{}, ErrBadSubject
	}
	if r.Locale == "" {
		r.Locale = LocaleEnglish
	}
	log := s.log.With(zap.String("call", r.Call))
	now := s.now()

	contact, sender := s.route(r.Contacts)
	decoy := sender == nil
	sent := Sent{ExpiresAt: now.Add(s.cfg.TTL)}
	if decoy {
		if len(r.Contacts) > 0 {
			log.Warn("otp: no contact on file has a sender; nothing will be delivered", zap.Int("contacts", len(r.Contacts)))
		}
		sent.Channel, sent.MaskedTo = s.decoyDestination(r.Subject)
	} else {
		sent.Channel, sent.MaskedTo = contact.Channel, Mask(contact.To)
	}

	code, err := generate(s.rand, s.cfg.Digits)
	if err != nil {
		return Sent{}, err
	}
	sum := mac(s.cfg.HMACKey, r.Subject, code.Reveal())

	var reservation *rate.Reservation
	if s.limiter != nil {
		reservation = s.limiter.ReserveN(now, 1)
		if d := reservation.DelayFrom(now); !reservation.OK() || d > 0 {
			reservation.CancelAt(now)
			if !reservation.OK() {
				d = time.Minute
			}
			err := rateLimited(ReasonGlobal, d)
			log.Warn("otp: send refused", zap.String("reason", err.Reason), zap.Duration("retry_after", err.RetryAfter))
			return Sent{}, err
		}
	}

	rec, err := s.store.Update(ctx, r.Subject, func(cur Record, found bool) (Record, error) {
		if !found {
			cur = Record{}
		}
		if cur.Failures >= s.cfg.MaxChecks {
			return cur, rateLimited(ReasonExhausted, cur.KeepUntil.Sub(now))
		}
		if next := cur.LastSent.Add(s.cfg.ResendAfter); found && now.Before(next) {
			return cur, rateLimited(ReasonResendGap, next.Sub(now))
		}
		if !now.Before(cur.WindowEnds) {
			cur.Sends, cur.WindowEnds = 0, now.Add(s.cfg.SendWindow)
		}
		if cur.Sends >= s.cfg.MaxSendsPerSubject {
			return cur, rateLimited(ReasonSendCap, cur.WindowEnds.Sub(now))
		}
		cur.MAC = sum
		cur.ExpiresAt = sent.ExpiresAt
		cur.Sends++
		cur.LastSent = now
		cur.MaskedTo = sent.MaskedTo
		cur.KeepUntil = later(cur.ExpiresAt, cur.WindowEnds)
		return cur, nil
	})
	if err != nil {
		if reservation != nil {
			reservation.CancelAt(now)
		}
		if rl, ok := errors.AsType[*RateLimitError](err); ok {
			log.Warn("otp: send refused", zap.String("reason", rl.Reason), zap.Duration("retry_after", rl.RetryAfter))
			return Sent{}, err
		}
		log.Error("otp: store", zap.Error(err))
		return Sent{}, fmt.Errorf("otp: send: %w", err)
	}

	if decoy {
		if err := sleep(ctx, s.lat.decoy()); err != nil {
			return sent, fmt.Errorf("%w: %w", ErrDelivery, err) // as a sender cut short by the hang-up
		}
		log.Info("otp: no contact on file; nothing delivered", zap.String("channel", sent.Channel), zap.Int("sends", rec.Sends))
		return sent, nil
	}
	start := time.Now()
	err = sender.Send(ctx, Message{To: contact.To, Channel: contact.Channel, Code: code, ExpiresAt: sent.ExpiresAt,
		Call: r.Call, Locale: r.Locale})
	took := time.Since(start)
	if err != nil {
		err = scrub(err, code)
		if !errors.Is(err, ErrDelivery) {
			err = fmt.Errorf("%w: %w", ErrDelivery, err)
		}
		log.Warn("otp: delivery failed", zap.String("channel", sent.Channel), zap.String("to", sent.MaskedTo),
			zap.Duration("took", took), zap.Error(err))
		return sent, err
	}
	s.lat.observe(took)
	log.Info("otp: sent", zap.String("channel", sent.Channel), zap.String("to", sent.MaskedTo),
		zap.Time("expires_at", sent.ExpiresAt), zap.Int("sends", rec.Sends), zap.Int("failures", rec.Failures),
		zap.Duration("took", took))
	return sent, nil
}

// dummyMAC stands in for a missing one so that Check always compares.
var dummyMAC = make([]byte, 32)

// Check compares keyed (the caller's entry, a trailing '#' allowed) with the subject's live
// code in constant time. A match consumes the code and resets the failure count (NIST SP
// 800-63B-4 §3.2.2). A wrong entry counts a failure; once Config.MaxChecks failures are
// counted the code is dead and Check returns ErrExhausted. It returns ErrNoCode when no code
// is pending (none sent, used, or lapsed) and ErrExpired after the code's TTL. Store failures
// match ErrUnavailable.
func (s *Service) Check(ctx context.Context, subject, keyed string) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if subject == "" {
		return Result{}, ErrBadSubject
	}
	now := s.now()
	k := normalizeKeyed(keyed)
	sum := mac(s.cfg.HMACKey, subject, k)
	var res Result
	_, err := s.store.Update(ctx, subject, func(cur Record, found bool) (Record, error) {
		res = Result{}
		stored := cur.MAC
		if len(stored) != len(dummyMAC) {
			stored = dummyMAC
		}
		match := hmac.Equal(sum, stored) && k != "" && found
		switch {
		case !found || len(cur.MAC) == 0:
			return cur, ErrNoCode
		case cur.Failures >= s.cfg.MaxChecks:
			return cur, ErrExhausted
		case !now.Before(cur.ExpiresAt):
			return cur, ErrExpired
		case match:
			cur.MAC, cur.Failures = nil, 0
			res.OK = true
		default:
			cur.Failures++
			res.Remaining = s.cfg.MaxChecks - cur.Failures
		}
		return cur, nil
	})
	switch {
	case err == nil:
		outcome := "failed"
		if res.OK {
			outcome = "passed"
		}
		s.log.Debug("otp: check", zap.String("outcome", outcome), zap.Int("remaining", res.Remaining), zap.Int("keyed_len", len(keyed)))
		return res, nil
	case errors.Is(err, ErrNoCode), errors.Is(err, ErrExhausted), errors.Is(err, ErrExpired):
		s.log.Debug("otp: check refused", zap.Error(err))
		return Result{}, err
	default:
		s.log.Error("otp: store", zap.Error(err))
		return Result{}, fmt.Errorf("otp: check: %w", err)
	}
}

// route returns the first contact whose channel has a sender, or a nil sender.
func (s *Service) route(contacts []Contact) (Contact, Sender) {
	for _, c := range contacts {
		if c.To == "" || strings.ContainsAny(c.To, "\r\n") {
			continue
		}
		if snd := s.senders.For(c.Channel); snd != nil {
			return c, snd
		}
	}
	return Contact{}, nil
}

// decoyDestination returns what a Sent for a subject with no deliverable contact shows: the
// channel a customer most likely gets (the first of sms, email, voice that has a sender) and
// a masked destination derived from the subject with the key, so that it is the same on
// every call for that account number and reveals nothing.
func (s *Service) decoyDestination(subject string) (channel, masked string) {
	channel = ChannelSMS
	for _, ch := range []string{ChannelSMS, ChannelEmail, ChannelVoice} {
		if s.senders.For(ch) != nil {
			channel = ch
			break
		}
	}
	h := mac(s.cfg.HMACKey, subject, "decoy")
	if channel == ChannelEmail {
		return channel, string(rune('a'+h[0]%26)) + "***@" + string(rune('a'+h[1]%26)) + "***.com"
	}
	return channel, fmt.Sprintf("***%04d", binary.BigEndian.Uint32(h[:4])%10000)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// latency is an exponential moving average of successful delivery times.
type latency struct {
	mu   sync.Mutex
	ewma time.Duration
}

func (l *latency) observe(d time.Duration) {
	d = min(d, maxDecoyLatency)
	l.mu.Lock()
	l.ewma += (d - l.ewma) / 8
	l.mu.Unlock()
}

// decoy returns the average with ±25% jitter (timing noise, not a secret: math/rand is enough).
func (l *latency) decoy() time.Duration {
	l.mu.Lock()
	d := l.ewma
	l.mu.Unlock()
	if d <= 0 {
		return 0
	}
	return d*3/4 + rand.N(d/2+1)
}
