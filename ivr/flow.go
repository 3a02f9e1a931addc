package ivr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/callproof/callproof/kba"
	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/sessions"
)

// Menu digits (the menus' order is part of the prompt texts).
var requestMenu = map[string]kba.Request{
	"1": kba.RequestKnowCategories,
	"2": kba.RequestKnowSpecific,
	"3": kba.RequestDelete,
	"4": kba.RequestCorrect,
	"5": kba.RequestOptOut,
	"6": kba.RequestLimit,
	"7": kba.RequestAccountService,
}

// correctMenu maps correct_menu's keys to the directory field being corrected; "other" rules
// out no factor.
var correctMenu = map[string]string{"1": "dob", "2": "zip", "3": "phones", "4": "name"}

// correctFields maps the correct_field stream parameter to a directory field.
var correctFields = map[string]string{"dob": "dob", "zip": "zip", "ssn_last4": "ssn_last4", "pin": "pin",
	"last_payment": "last_payment_cents", "phone": "phones", "phones": "phones", "email": "emails",
	"emails": "emails", "name": "name", "other": "name"}

// accountSpec is an account number: 4 to 16 digits and '#'.
var accountSpec = spec{min: 4, max: 16, terminator: true}

// menuSpec is a one-key menu choice.
var menuSpec = spec{min: 1, max: 1}

// flow is one call's run through the engine.
type flow struct {
	e     *Engine
	c     *conversation
	start *media.Start
	log   *zap.Logger
	res   Result

	policy    kba.Policy
	customer  *kba.Customer
	subjects  []string // hashed store keys of the account number and the calling number
	signals   kba.RiskSignals
	steppedUp bool
	decided   *kba.Outcome
	declared  bool
	// otpChannel is how the passcode went out ("sms", "email"), for the token's amr.
	otpChannel string
	// recorded is true once the request's record is kept.
	recorded bool
}

// record keeps the request's record, when a recorder is configured.
func (f *flow) record(ctx context.Context, r Result) error {
	if f.e.recorder == nil {
		return nil
	}
	if r.Responded.IsZero() && r.Outcome != "" {
		r.Responded = time.Now()
	}
	if r.Passed == nil && r.Failed == nil && f.decided != nil {
		r.Passed, r.Failed = f.decided.Passed, f.decided.Failed
	}
	r.Declaration = r.Declaration || f.declared
	if err := f.e.recorder.Record(ctx, r); err != nil {
		f.log.Error("request record not kept", zap.Error(err))
		return fmt.Errorf("%w: keep record: %v", ErrStore, err)
	}
	return nil
}

// run takes the caller through the flow up to the decision; finish delivers it.
func (f *flow) run(ctx context.Context) error {
	c := f.c
	if f.e.available != nil {
		if err := f.e.available(); err != nil {
			return fmt.Errorf("%w: at call start: %v", ErrStore, err)
		}
	}
	if err := f.chooseLanguage(ctx); err != nil {
		return err
	}
	if err := f.chooseRequest(ctx); err != nil {
		return err
	}
	if f.policy.Verify {
		if err := f.chooseAgent(ctx); err != nil {
			return err
		}
	}
	account := f.start.Param("account")
	if account == "" || !accountSpec.valid(account) || !allDigits(account) {
		var err error
		account, err = c.ask(ctx, "ask_account", accountSpec, allDigits)
		if err != nil {
			return err
		}
	}
	f.step(ctx, "ask_account", "passed")
	f.subjects = []string{kba.SubjectKey(f.e.key, kba.SubjectAccount, account)}
	if f.start.From != "" {
		f.subjects = append(f.subjects, kba.SubjectKey(f.e.key, kba.SubjectCaller, f.start.From))
	}
	f.customer, _ = f.e.dir.ByAccount(account)
	if !f.policy.Verify {
		return nil // recorded and confirmed in finish
	}

	// Lockouts and risk come from counters keyed by what the caller gave (the account number
	// entered, the calling number), never by whether the account exists.
	failures := make([]int, len(f.subjects))
	for i, key := range f.subjects {
		lock, err := f.e.attempts.Check(ctx, key)
		if err != nil {
			return fmt.Errorf("%w: check lockout: %v", ErrStore, err)
		}
		if lock.Locked {
			return errLocked
		}
		failures[i] = lock.Failures
	}
	f.signals = kba.RiskSignals{
		ANIMatch:        f.customer != nil && f.start.From != "" && slices.Contains(f.customer.Phones, f.start.From),
		Verstat:         kba.NormalizeVerstat(f.start.Verstat),
		AccountFailures: failures[0],
	}
	if len(failures) > 1 {
		f.signals.CallerFailures = failures[1]
	}
	if up, reasons := f.e.cfg.Risk.Assess(f.signals); up {
		if p, ok := f.policy.StepUp(); ok {
			f.policy, f.steppedUp = p, true
			f.log.Info("risk step-up", zap.Strings("signals", reasons))
		}
	}
	f.step(ctx, "risk", passFail(!f.steppedUp))

	results := make(map[kba.Factor]bool, f.policy.Points)
	for _, factor := range f.policy.Asked() {
		fs, ok := kba.Spec(factor)
		if !ok {
			return fmt.Errorf("%w: policy names unknown factor %q", ErrStore, factor)
		}
		s := spec{min: fs.MinDigits, max: fs.MaxDigits, terminator: fs.Terminator}
		keyed, err := c.ask(ctx, fs.Prompt, s, func(d string) bool { _, err := kba.Normalize(factor, d); return err == nil })
		if err != nil {
			if errors.Is(err, ErrNoInput) || errors.Is(err, ErrInvalidInput) {
				results[factor] = false
				f.step(ctx, string(factor), "failed")
				continue
			}
			return err
		}
		if factor == kba.FactorTOTP {
			ok, err = f.totp(ctx, keyed)
			if err != nil {
				return err
			}
		} else {
			norm, _ := kba.Normalize(factor, keyed)
			ok = kba.Match(f.customer, factor, norm)
		}
		results[factor] = ok
		f.step(ctx, string(factor), passFail(ok))
	}
	if f.res.Agent {
		ok, err := f.passcode(ctx)
		if err != nil {
			return err
		}
		results[kba.FactorOTP] = ok
		f.step(ctx, string(kba.FactorOTP), passFail(ok))
	}
	if f.policy.Declaration {
		d, err := c.ask(ctx, "declaration", menuSpec, nil)
		switch {
		case errors.Is(err, ErrNoInput), errors.Is(err, ErrInvalidInput):
		case err != nil:
			return err
		default:
			f.declared = d == "1"
		}
		f.step(ctx, "declaration", passFail(f.declared))
	}
	out := kba.Decide(f.policy, results, f.declared)
	f.decided = &out
	return nil
}

// chooseAgent asks whether the caller acts for the consumer as an authorized agent (§7063),
// unless the stream says ("agent" parameter) or passcodes are not configured.
func (f *flow) chooseAgent(ctx context.Context) error {
	if f.e.passcodes == nil {
		return nil
	}
	switch f.start.Param("agent") {
	case "1", "true", "yes":
		f.res.Agent = true
		return nil
	case "0", "false", "no":
		return nil
	}
	choice, err := f.c.ask(ctx, "agent_menu", menuSpec, func(d string) bool { return d == "1" || d == "2" })
	if err != nil {
		return err
	}
	f.res.Agent = choice == "2"
	f.step(ctx, "agent_menu", "passed")
	return nil
}

// passcode sends a one-time passcode to the consumer's contact on file (never to a number the
// caller keys) and checks what the caller keys, re-asking after a wrong code while the code
// still has checks left. An unknown account takes the same path; nothing is delivered.
func (f *flow) passcode(ctx context.Context) (bool, error) {
	var to []Contact
	if f.customer != nil {
		for _, p := range f.customer.Phones {
			to = append(to, Contact{Channel: "sms", To: p})
		}
		for _, e := range f.customer.Emails {
			to = append(to, Contact{Channel: "email", To: e})
		}
	}
	channel, err := f.e.passcodes.Send(ctx, f.subjects[0], f.start.CallID, f.c.locale, to)
	switch {
	case errors.Is(err, ErrPasscodeRejected):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w: send passcode: %v", ErrStore, err)
	}
	f.otpChannel = channel
	fs, _ := kba.Spec(kba.FactorOTP)
	s := spec{min: fs.MinDigits, max: fs.MaxDigits, terminator: fs.Terminator}
	var lead []string
	for {
		keyed, err := f.c.ask(ctx, fs.Prompt, s, allDigits, lead...)
		if errors.Is(err, ErrNoInput) || errors.Is(err, ErrInvalidInput) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		ok, remaining, err := f.e.passcodes.Check(ctx, f.subjects[0], keyed)
		switch {
		case errors.Is(err, ErrPasscodeRejected):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("%w: check passcode: %v", ErrStore, err)
		case ok:
			return true, nil
		case remaining <= 0:
			return false, nil
		}
		lead = []string{"invalid_input"}
	}
}

// totp checks an authenticator code and spends its time step, so the same code cannot be used
// twice within its validity (RFC 6238 §5.2).
func (f *flow) totp(ctx context.Context, keyed string) (bool, error) {
	step, ok := kba.MatchTOTP(f.customer, keyed, time.Now())
	if f.e.replay == nil {
		return false, fmt.Errorf("%w: no single-use store for authenticator codes", ErrStore)
	}
	if !ok {
		return false, nil
	}
	first, err := f.e.replay.Consume(ctx, kba.SubjectKey(f.e.key, "totp", fmt.Sprintf("%s:%d", f.customer.ID, step)),
		time.Unix((step+2)*int64(kba.TOTPStep/time.Second), 0))
	if err != nil {
		return false, fmt.Errorf("%w: spend authenticator code: %v", ErrStore, err)
	}
	return first, nil
}

// chooseLanguage plays the welcome and, unless the stream says, the language menu.
func (f *flow) chooseLanguage(ctx context.Context) error {
	c := f.c
	lang := f.start.Param("lang")
	if loc, ok := parseLocale(lang); ok {
		c.locale = loc
	} else {
		lang = ""
	}
	if err := c.say(ctx, "welcome"); err != nil {
		return err
	}
	if lang != "" {
		return nil
	}
	choice, err := c.ask(ctx, "language_menu", menuSpec, func(d string) bool { return d == "1" || d == "2" })
	switch {
	case errors.Is(err, ErrNoInput), errors.Is(err, ErrInvalidInput):
		// keep the default language
	case err != nil:
		return err
	case choice == "2":
		c.locale = "es-US"
	default:
		c.locale = "en-US"
	}
	f.step(ctx, "language_menu", "passed")
	return nil
}

// chooseRequest sets the request type and its policy, from the stream or the request menu; a
// correction also asks which field, so that field never verifies it (§7060(h)).
func (f *flow) chooseRequest(ctx context.Context) error {
	c := f.c
	req, err := kba.ParseRequest(f.start.Param("request"))
	if err != nil {
		choice, err := c.ask(ctx, "request_menu", menuSpec, func(d string) bool { _, ok := requestMenu[d]; return ok })
		if err != nil {
			return err
		}
		req = requestMenu[choice]
		f.step(ctx, "request_menu", "passed")
	}
	f.res.Request = req
	f.policy, err = f.e.cfg.Policies.For(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStore, err)
	}
	if req != kba.RequestCorrect {
		return nil
	}
	field, ok := correctFields[f.start.Param("correct_field")]
	if !ok {
		choice, err := c.ask(ctx, "correct_menu", menuSpec, func(d string) bool { _, ok := correctMenu[d]; return ok })
		if err != nil {
			return err
		}
		field = correctMenu[choice]
		f.step(ctx, "correct_menu", "passed")
	}
	exclude, _ := kba.FactorsForField(field)
	if f.policy, err = f.policy.Excluding(exclude...); err != nil {
		return fmt.Errorf("%w: %v", ErrStore, err)
	}
	f.res.CorrectField = field
	return nil
}

// handoffLeg is a leg that transfers the call when it hangs up and can carry data to the
// transfer target (media/sip puts the token in a header of its REFER).
type handoffLeg interface {
	SetHandoff(map[string]string)
}

// errLocked ends the flow with locked_out.
var errLocked = errors.New("ivr: account locked")

// finish turns the run's end into the final prompts, the agent messages and the stores'
// updates. It returns the result and the error that was ours, if any.
func (f *flow) finish(ctx context.Context, runErr error) (Result, error) {
	res := &f.res
	res.Locale = f.c.locale
	var ourErr error
	prompts := []string{}
	outcome, reason, ours := outcomeFor(runErr)
	switch {
	case outcome == "" && runErr != nil: // the caller hung up
		res.Reason = reason
		return *res, nil
	case ours:
		ourErr = runErr
	case runErr != nil:
		res.Outcome, res.Reason, res.Level = outcome, reason, kba.LevelNone
		f.notVerified(ctx, reason)
	case !f.policy.Verify:
		res.Outcome, res.Reason, res.Level = "opt_out_confirmed", kba.ReasonNotRequired, kba.LevelNone
		// The request is kept before the caller is told it is confirmed.
		if ourErr = f.record(context.WithoutCancel(ctx), *res); ourErr == nil {
			f.recorded = true
			f.step(ctx, "opt_out_confirmed", "passed")
			prompts = append(prompts, "goodbye")
		}
	case f.decided != nil && f.decided.Verified && f.customer != nil:
		ourErr = f.verified(ctx, *f.decided, "verified")
	default:
		ourErr = f.failed(ctx)
	}
	if ourErr != nil {
		res.Outcome, res.Reason, res.Level, res.JTI = "technical_difficulty", "technical_difficulty", kba.LevelNone, ""
		f.notVerified(context.WithoutCancel(ctx), res.Reason)
	}
	if err := f.c.say(ctx, append([]string{res.Outcome}, prompts...)...); err != nil && !errors.Is(err, ErrHangup) && ourErr == nil {
		ourErr = err
	}
	if ourErr == nil && res.Outcome == "not_verified" && res.Request == kba.RequestDelete {
		f.offerOptOut(ctx)
	}
	return *res, ourErr
}

// failed records a failed verification against the account and the calling number, and
// delivers the §7024(a) fallback when a know_specific caller met the know_categories bar.
func (f *flow) failed(ctx context.Context) error {
	res := &f.res
	out := kba.Outcome{Reason: kba.ReasonMismatch}
	if f.decided != nil {
		out = *f.decided
	}
	if out.Reason == "" || out.Reason == kba.ReasonVerified {
		out.Reason = kba.ReasonMismatch
	}
	lr := f.e.cfg.Lockout
	for _, key := range f.subjects {
		// Back-off: each lock within the back-off window lasts twice the one before. Past locks
		// are counted under a key of their own (a counter that never locks).
		history := key + ":locks"
		past, err := f.e.attempts.Check(ctx, history)
		if err != nil {
			return fmt.Errorf("%w: read lock history: %v", ErrStore, err)
		}
		rule := sessions.Rule{Max: lr.MaxFailures, Window: lr.Window, LockFor: lr.LockFor(past.Failures)}
		lock, err := f.e.attempts.Fail(ctx, key, rule)
		if err != nil {
			return fmt.Errorf("%w: record failure: %v", ErrStore, err)
		}
		if lock.Locked {
			f.log.Warn("verification locked after failed sessions", zap.Int("failures", lock.Failures),
				zap.Duration("lock_for", rule.LockFor), zap.Int("prior_locks", past.Failures))
			window := lr.BackoffWindow
			if window <= 0 {
				window = 7 * 24 * time.Hour
			}
			if _, err := f.e.attempts.Fail(ctx, history, sessions.Rule{Max: 1 << 20, Window: window, LockFor: time.Second}); err != nil {
				return fmt.Errorf("%w: record lock: %v", ErrStore, err)
			}
		}
	}
	if fb, ok := f.e.cfg.Policies.Fallback(out); ok && f.customer != nil {
		return f.verified(ctx, fb, "partially_verified")
	}
	res.Outcome, res.Reason, res.Level = "not_verified", out.Reason, kba.LevelNone
	f.notVerified(ctx, res.Reason)
	return nil
}

// offerOptOut follows a failed deletion with the opt-out it may still make (§7060(b): opt-out
// needs no verification).
func (f *flow) offerOptOut(ctx context.Context) {
	choice, err := f.c.ask(ctx, "offer_opt_out", menuSpec, func(d string) bool { return d == "1" || d == "2" })
	if err != nil || choice != "1" {
		f.step(ctx, "offer_opt_out", "skipped")
		return
	}
	// The opt-out is a request of its own, kept before the caller is told it is confirmed.
	opt := f.res
	opt.RequestID, opt.Request, opt.Outcome, opt.Reason, opt.Passed, opt.Failed, opt.Responded = newRequestID(),
		kba.RequestOptOut, "opt_out_confirmed", kba.ReasonNotRequired, nil, nil, time.Time{}
	opt.OptOut = true
	if err := f.record(context.WithoutCancel(ctx), opt); err != nil {
		f.step(ctx, "offer_opt_out", "failed")
		_ = f.c.say(ctx, "technical_difficulty")
		return
	}
	f.res.OptOut = true
	f.step(ctx, "opt_out_confirmed", "passed")
	_ = f.c.say(ctx, "opt_out_confirmed", "goodbye")
}

// verified issues the token and hands it to the agent; the caller hears prompt only if both
// succeed.
func (f *flow) verified(ctx context.Context, out kba.Outcome, prompt string) error {
	for _, key := range f.subjects[:1] {
		if err := f.e.attempts.Reset(ctx, key); err != nil {
			return fmt.Errorf("%w: reset attempts: %v", ErrStore, err)
		}
	}
	request := f.res.Request
	if out.Request != "" {
		request = out.Request
	}
	passed := make([]string, 0, len(out.Passed))
	for _, p := range out.Passed {
		passed = append(passed, string(p))
	}
	amr := kba.AMR(out.Passed)
	if f.otpChannel == "sms" && slices.Contains(out.Passed, kba.FactorOTP) {
		amr = append(amr, "sms") // RFC 8176: confirmation by text message
	}
	if f.steppedUp {
		amr = append(amr, "rba") // RFC 8176: risk-based step-up shaped this verification
	}
	claims := sessions.Claims{
		Subject:         f.customer.ID,
		Call:            f.start.CallID,
		ACR:             out.Level.ACR(),
		AMR:             amr,
		CCPARequest:     string(request),
		DataPoints:      passed,
		Declaration:     out.Declaration,
		ANIMatch:        f.signals.ANIMatch,
		Verstat:         f.start.Verstat,
		RequestID:       f.res.RequestID,
		AuthorizedAgent: f.res.Agent,
	}
	token, jti, err := f.e.issuer.Issue(ctx, claims)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrIssue, err)
	}
	// Legs that hand the call over themselves (a SIP REFER to the agent) carry the token.
	if h, ok := f.c.leg.(handoffLeg); ok {
		h.SetHandoff(map[string]string{"token": token})
	}
	f.res.Outcome, f.res.Reason, f.res.Level, f.res.JTI = prompt, kba.ReasonVerified, out.Level, jti
	f.res.VerifiedRequest, f.res.AMR, f.res.Passed, f.res.Failed = request, claims.AMR, out.Passed, out.Failed
	f.res.Declaration, f.res.Responded = out.Declaration, time.Now()
	// The record is kept before anyone is told: a verification without its record is refused.
	if err := f.record(ctx, f.res); err != nil {
		return err
	}
	f.recorded = true
	reason := ""
	if out.Downgraded {
		reason = "downgraded: know_specific not verified; know_categories verified"
	}
	err = f.e.publish(ctx, f.log, sessions.AgentMessage{Type: "verified", Call: f.start.CallID,
		Level: string(out.Level), Request: string(request), AMR: claims.AMR, Token: token, Reason: reason})
	if err != nil {
		return fmt.Errorf("%w: deliver to agent: %v", ErrIssue, err)
	}
	if f.e.notifier != nil {
		if err := f.e.notifier.Verified(ctx, f.res, token); err != nil {
			f.log.Warn("CRM notification not queued", zap.Error(err))
		}
	}
	f.log.Info("caller verified", zap.String("assurance", string(out.Level)), zap.String("request", string(request)), zap.String("jti", jti))
	return nil
}

// outcomeFor maps the error that ended a run to the prompt the caller hears last and the reason
// the agent sees. ours is true when the call failed because of us (state, signing, prompts):
// the caller then hears technical_difficulty and nobody is verified. An empty outcome with a
// non-nil error means the caller is gone and hears nothing.
func outcomeFor(err error) (outcome, reason string, ours bool) {
	switch {
	case err == nil:
		return "", "", false
	case errors.Is(err, ErrHangup):
		return "", "hangup", false
	case errors.Is(err, errLocked):
		return "locked_out", kba.ReasonLockedOut, false
	case errors.Is(err, ErrNoInput):
		return "not_verified", kba.ReasonNoInput, false
	case errors.Is(err, ErrInvalidInput):
		return "not_verified", "invalid_input", false
	default: // ErrStore, ErrIssue, ErrPrompt and anything unforeseen: fail closed
		return "technical_difficulty", "technical_difficulty", true
	}
}

func (f *flow) notVerified(ctx context.Context, reason string) {
	_ = f.e.publish(ctx, f.log, sessions.AgentMessage{Type: "not_verified", Call: f.start.CallID,
		Request: string(f.res.Request), Reason: reason})
}

// step tells the agent a step's result; never the value keyed.
func (f *flow) step(ctx context.Context, id, result string) {
	_ = f.e.publish(ctx, f.log, sessions.AgentMessage{Type: "step", Call: f.start.CallID, Step: id, Result: result})
}

func passFail(ok bool) string {
	if ok {
		return "passed"
	}
	return "failed"
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func parseLocale(s string) (string, bool) {
	switch s {
	case "en-US", "en-us", "en", "EN":
		return "en-US", true
	case "es-US", "es-us", "es", "ES":
		return "es-US", true
	}
	return "", false
}
