package ivr

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/callproof/callproof/kba"
	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/sessions"
)

// Config holds the flow's tunables. Zero values take the documented defaults.
type Config struct {
	// FirstDigitTimeout is how long to wait for the first digit after a question has played.
	// Default 5 s.
	FirstDigitTimeout time.Duration
	// InterDigitTimeout ends an entry when no further digit comes. Default 3 s.
	InterDigitTimeout time.Duration
	// MaxRetries is how many no_input and how many invalid_input re-prompts a question gets.
	// Default 2.
	MaxRetries int
	// MarkSlack is added to a prompt's length when waiting for its mark; after that the prompt
	// counts as played even if the platform never acknowledged it. Default 2 s.
	MarkSlack time.Duration
	// DefaultLocale is the language when the caller does not choose. Default "en-US".
	DefaultLocale string
	// Policies is the CCPA policy table. Default kba.DefaultPolicies().
	Policies kba.Policies
	// Lockout locks an account number, and a calling number, after repeated failed sessions.
	// Default kba.DefaultLockout().
	Lockout kba.LockoutRule
	// Risk decides when a caller answers one more question. Default kba.DefaultRisk(); set
	// &kba.RiskPolicy{} to never step up.
	Risk *kba.RiskPolicy
}

func (c Config) withDefaults() Config {
	if c.FirstDigitTimeout <= 0 {
		c.FirstDigitTimeout = 5 * time.Second
	}
	if c.InterDigitTimeout <= 0 {
		c.InterDigitTimeout = 3 * time.Second
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 2
	}
	if c.MarkSlack <= 0 {
		c.MarkSlack = 2 * time.Second
	}
	if c.DefaultLocale == "" {
		c.DefaultLocale = "en-US"
	}
	if c.Policies == nil {
		c.Policies = kba.DefaultPolicies()
	}
	if c.Lockout.MaxFailures == 0 {
		c.Lockout = kba.DefaultLockout()
	}
	if c.Risk == nil {
		r := kba.DefaultRisk()
		c.Risk = &r
	}
	return c
}

// Validate reports a configuration the flow cannot run with.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.MaxRetries > 5 {
		return fmt.Errorf("ivr: max retries %d: at most 5", c.MaxRetries)
	}
	if c.DefaultLocale != "en-US" && c.DefaultLocale != "es-US" {
		return fmt.Errorf("ivr: default locale %q: want en-US or es-US", c.DefaultLocale)
	}
	if c.Lockout.MaxFailures < 1 || c.Lockout.Window <= 0 || c.Lockout.Duration <= 0 {
		return fmt.Errorf("ivr: lockout needs max failures, window and duration")
	}
	return c.Policies.Validate()
}

// promptSource finds a prompt's audio; *prompts.Catalog implements it.
type promptSource interface {
	Clip(locale, id string) (*media.Clip, error)
}

// directory finds a customer by account number; *kba.Directory implements it.
type directory interface {
	ByAccount(account string) (*kba.Customer, bool)
}

// Contact is a destination on file for a one-time passcode.
type Contact struct {
	Channel string // "sms" or "email"
	To      string
}

// Passcodes sends one-time passcodes to contacts on file and checks what the caller keys.
// cmd adapts sessions/otp to it. Send with no contacts (an unknown account) must behave like a
// send that delivered, so the caller cannot tell. Check returns ErrPasscodeRejected when the
// code is spent, expired or was never sent, and ErrStore (wrapped) when state is unavailable.
type Passcodes interface {
	Send(ctx context.Context, subject, call, locale string, to []Contact) (channel string, err error)
	Check(ctx context.Context, subject, keyed string) (ok bool, remaining int, err error)
}

// Engine runs the verification flow on legs. One Engine serves every call of a process.
type Engine struct {
	cfg       Config
	prompts   promptSource
	dir       directory
	attempts  sessions.Attempts
	issuer    sessions.Issuer
	publisher sessions.Publisher
	key       []byte
	log       *zap.Logger
	passcodes Passcodes
	replay    sessions.Replay
	recorder  Recorder
	notifier  Notifier
	available func() error
}

// Recorder keeps the record of each request a call makes (CCPA §7101). A verification is only
// announced once its record is kept; a failure to keep it fails the call closed.
type Recorder interface {
	Record(ctx context.Context, r Result) error
}

// Notifier tells other systems (a CRM) that a caller was verified, with the token. It must not
// block the call: deliveries are queued.
type Notifier interface {
	Verified(ctx context.Context, r Result, token string) error
}

// WithRecorder keeps a record of every request (the audit trail).
func WithRecorder(r Recorder) Option { return func(e *Engine) { e.recorder = r } }

// WithNotifier notifies other systems of verifications (the CRM webhook).
func WithNotifier(n Notifier) Option { return func(e *Engine) { e.notifier = n } }

// Option supplies a collaborator.
type Option func(*Engine)

// WithAvailability gives the flow a cheap check of whether the state it needs (lockout
// counters, single-use ids, the audit trail) can be reached. When it returns an error at the
// start of a call, the caller hears technical_difficulty at once rather than after the menus
// and the account number, and nobody is verified. Calls already past the start are not
// affected: each store operation fails closed on its own.
func WithAvailability(check func() error) Option { return func(e *Engine) { e.available = check } }

// WithPasscodes enables one-time passcodes: the authorized-agent path (agent_menu) verifies the
// consumer through a passcode to the consumer's contact on file. Without it the agent menu is
// not offered.
func WithPasscodes(p Passcodes) Option { return func(e *Engine) { e.passcodes = p } }

// WithReplay supplies the single-use store that refuses an authenticator (TOTP) code's time
// step once used (RFC 6238 §5.2). Policies that ask totp fail closed without it.
func WithReplay(r sessions.Replay) Option { return func(e *Engine) { e.replay = r } }

// WithLogger sets the logger. Default: none.
func WithLogger(l *zap.Logger) Option { return func(e *Engine) { e.log = l } }

// New builds an engine. Every collaborator is required: the prompt catalog, the customer
// directory, the attempt store, the token issuer, the agent publisher and the server key that
// hashes account numbers and caller numbers before they reach a store.
func New(cfg Config, p promptSource, dir directory, attempts sessions.Attempts, issuer sessions.Issuer,
	pub sessions.Publisher, serverKey []byte, opts ...Option) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if p == nil || dir == nil || attempts == nil || issuer == nil || pub == nil {
		return nil, errors.New("ivr: prompts, directory, attempts, issuer and publisher are required")
	}
	if len(serverKey) < 16 {
		return nil, errors.New("ivr: server key must be at least 16 bytes")
	}
	e := &Engine{cfg: cfg.withDefaults(), prompts: p, dir: dir, attempts: attempts, issuer: issuer,
		publisher: pub, key: serverKey, log: zap.NewNop()}
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// Result is what a call came to.
type Result struct {
	CallID  string
	Request kba.Request
	Locale  string
	// Outcome is the final prompt's id: verified, not_verified, locked_out,
	// opt_out_confirmed or technical_difficulty; "" when the caller hung up first.
	Outcome string
	// Reason is the stable reason shown to the agent (kba reasons, "hangup", ...).
	Reason string
	Level  kba.Level
	// JTI is the issued token's id, when one was issued.
	JTI string
	// VerifiedRequest is the request the token covers: Request, or know_categories when a
	// know_specific caller was verified only to that level (§7024(a)).
	VerifiedRequest kba.Request
	// CorrectField is the directory field a correction is about, when Request is correct.
	CorrectField string
	// OptOut is true when a caller whose deletion was not verified opted out instead.
	OptOut bool
	// Agent is true when the caller said they act for the consumer as an authorized agent.
	Agent bool
	// RequestID is the request's record key ("req_..."), also the token's request_id claim.
	RequestID string
	// Transport is the leg's platform (twilio, sip, ...).
	Transport string
	// Received is when the call started; Responded when the caller was told the outcome
	// (zero when the caller left first).
	Received, Responded time.Time
	// Passed and Failed are the factors asked, by result; never their values.
	Passed, Failed []kba.Factor
	// Declaration is true when the caller affirmed the §7062(c) declaration.
	Declaration bool
	// AMR are the token's authentication methods, when one was issued.
	AMR []string
}

// Run runs the flow on leg until it ends, then hangs the leg up. It returns the call's result;
// the error is non-nil only when the call failed because of us (a store, signer or prompt).
func (e *Engine) Run(ctx context.Context, leg media.Leg) (Result, error) {
	c := &conversation{leg: leg, events: leg.Events(), prompts: e.prompts, locale: e.cfg.DefaultLocale, cfg: &e.cfg}
	start, err := e.waitStart(ctx, c)
	if err != nil {
		_ = leg.Hangup("no start")
		return Result{Reason: "no_start"}, nil
	}
	began := time.Now()
	log := e.log.With(zap.String("call", start.CallID), zap.String("transport", start.Transport))
	f := &flow{e: e, c: c, start: start, log: log, res: Result{CallID: start.CallID, RequestID: newRequestID(),
		Transport: start.Transport, Received: began}}
	log.Info("call started", zap.String("caller", media.MaskPhone(start.From)),
		zap.String("verstat", start.Verstat))
	e.publish(context.WithoutCancel(ctx), log, sessions.AgentMessage{Type: "call", Call: start.CallID, State: "started",
		Caller: media.MaskPhone(start.From), Transport: start.Transport,
		Request: start.Param("request"), Lang: start.Param("lang")})

	runErr := f.run(ctx)
	res, ourErr := f.finish(ctx, runErr)
	if !f.recorded {
		if err := f.record(context.WithoutCancel(ctx), res); err != nil && ourErr == nil {
			ourErr = err
		}
	}
	// A failed deletion that turned into an opt-out recorded the opt-out before confirming it
	// (offerOptOut).

	_ = leg.Hangup(res.Reason)
	e.publish(context.WithoutCancel(ctx), log, sessions.AgentMessage{Type: "call", Call: start.CallID,
		State: "ended", Reason: res.Reason, Request: string(res.Request)})
	fields := []zap.Field{zap.String("outcome", res.Outcome), zap.String("reason", res.Reason),
		zap.String("request", string(res.Request)), zap.String("locale", c.locale),
		zap.Int("digits", c.digits), zap.Int("barge_ins", c.bargeIns),
		zap.Duration("duration", time.Since(began))}
	if ourErr != nil {
		log.Error("call failed", append(fields, zap.Error(ourErr))...)
	} else {
		log.Info("call ended", fields...)
	}
	return res, ourErr
}

// waitStart waits for the leg's start event.
func (e *Engine) waitStart(ctx context.Context, c *conversation) (*media.Start, error) {
	for {
		ev, ok, err := c.next(ctx, 30*time.Second)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrNoStart
		}
		if ev.Type == media.EventStart && ev.Start != nil {
			return ev.Start, nil
		}
	}
}

func (e *Engine) publish(ctx context.Context, log *zap.Logger, m sessions.AgentMessage) error {
	m.At = time.Now().UTC()
	if err := e.publisher.Publish(ctx, m); err != nil {
		log.Warn("agent publish failed", zap.String("type", m.Type), zap.Error(err))
		return err
	}
	return nil
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}
