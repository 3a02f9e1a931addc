package ivr

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/callproof/callproof/kba"
	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/sessions"
)

// Menu digits (the request menu's order is part of the prompt text).
var requestMenu = map[string]kba.Request{
	"1": "know_categories",
	"2": "know_specific",
	"3": "delete",
	"4": "correct",
	"5": "opt_out",
	"6": "limit",
	"7": "account_service",
}

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

	policy   kba.Policy
	customer *kba.Customer
	account  string // hashed account key
	decided  *kba.Outcome
	declared bool
}

// verdict is how the flow ended, before the final prompt: a kba outcome, a lockout, a recorded
// request that needs no verification, or an error.
type verdict struct {
	outcome  kba.Outcome
	locked   bool
	recorded bool
}

// run takes the caller through the flow up to the decision; finish delivers it.
func (f *flow) run(ctx context.Context) error {
	c := f.c
	lang := f.start.Param("lang")
	if lang != "" {
		loc, ok := parseLocale(lang)
		if ok {
			c.locale = loc
		} else {
			lang = ""
		}
	}
	if err := c.say(ctx, "welcome"); err != nil {
		return err
	}
	if lang == "" {
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
	}

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

	account := f.start.Param("account")
	if account == "" || !accountSpec.valid(account) || !allDigits(account) {
		account, err = c.ask(ctx, "ask_account", accountSpec, allDigits)
		if err != nil {
			return err
		}
	}
	f.step(ctx, "ask_account", "passed")
	f.account = kba.SubjectKey(f.e.key, "account", account)
	f.customer, _ = f.e.dir.ByAccount(account)

	if !f.policy.Verify {
		return nil // recorded and confirmed in finish
	}

	lock, err := f.e.attempts.Check(ctx, f.account)
	if err != nil {
		return fmt.Errorf("%w: check lockout: %v", ErrStore, err)
	}
	if lock.Locked {
		return errLocked
	}

	results := make(map[kba.Factor]bool, len(f.policy.Factors))
	for _, factor := range f.policy.Factors[:f.policy.Points] {
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
		norm, _ := kba.Normalize(factor, keyed)
		ok = kba.Match(f.customer, factor, norm)
		results[factor] = ok
		f.step(ctx, string(factor), passFail(ok))
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

// errLocked ends the flow with locked_out.
var errLocked = errors.New("ivr: account locked")

// finish turns the run's end into the final prompt, the agent message and the stores'
// updates. It returns the result and the error that was ours, if any.
func (f *flow) finish(ctx context.Context, runErr error) (Result, error) {
	res := &f.res
	res.Locale = f.c.locale
	var ourErr error
	outcome, reason, ours := outcomeFor(runErr)
	switch {
	case outcome == "" && runErr != nil: // the caller hung up
		res.Reason = reason
		return *res, nil
	case ours:
		ourErr = runErr
	case runErr != nil:
		res.Outcome, res.Reason, res.Level = outcome, reason, "none"
		f.notVerified(ctx, reason)
	case !f.policy.Verify:
		res.Outcome, res.Reason, res.Level = "opt_out_confirmed", "not_required", "none"
		f.step(ctx, "opt_out_confirmed", "passed")
	case f.decided != nil && f.decided.Verified && f.customer != nil:
		ourErr = f.verified(ctx)
	default:
		res.Outcome, res.Reason, res.Level = "not_verified", "mismatch", "none"
		if f.decided != nil && f.decided.Reason != "" {
			res.Reason = f.decided.Reason
		}
		lock, err := f.e.attempts.Fail(ctx, f.account, sessions.Rule{Max: f.e.cfg.Lockout.MaxFailures,
			Window: f.e.cfg.Lockout.Window, LockFor: f.e.cfg.Lockout.Duration})
		if err != nil {
			ourErr = fmt.Errorf("%w: record failure: %v", ErrStore, err)
			break
		}
		if lock.Locked {
			f.log.Warn("account locked after failed verification", zap.Int("failures", lock.Failures))
		}
		f.notVerified(ctx, res.Reason)
	}
	if ourErr != nil {
		res.Outcome, res.Reason, res.Level, res.JTI = "technical_difficulty", "technical_difficulty", "none", ""
		f.notVerified(context.WithoutCancel(ctx), res.Reason)
	}
	prompts := []string{res.Outcome}
	if res.Outcome == "opt_out_confirmed" {
		prompts = append(prompts, "goodbye")
	}
	if err := f.c.say(ctx, prompts...); err != nil && !errors.Is(err, ErrHangup) && ourErr == nil {
		ourErr = err
	}
	return *res, ourErr
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
		return "locked_out", "locked_out", false
	case errors.Is(err, ErrNoInput):
		return "not_verified", "no_input", false
	case errors.Is(err, ErrInvalidInput):
		return "not_verified", "invalid_input", false
	default: // ErrStore, ErrIssue, ErrPrompt and anything unforeseen: fail closed
		return "technical_difficulty", "technical_difficulty", true
	}
}

// verified issues the token and hands it to the agent. Nothing is announced to the caller
// unless both succeed.
func (f *flow) verified(ctx context.Context) error {
	out := f.decided
	if err := f.e.attempts.Reset(ctx, f.account); err != nil {
		return fmt.Errorf("%w: reset attempts: %v", ErrStore, err)
	}
	passed := make([]string, 0, len(out.Passed))
	for _, p := range out.Passed {
		passed = append(passed, string(p))
	}
	claims := sessions.Claims{
		Subject:     f.customer.ID,
		Call:        f.start.CallID,
		ACR:         out.Level.ACR(),
		AMR:         kba.AMR(out.Passed),
		CCPARequest: string(f.res.Request),
		DataPoints:  passed,
		Declaration: out.Declaration,
		ANIMatch:    f.start.From != "" && slices.Contains(f.customer.Phones, f.start.From),
		Verstat:     f.start.Verstat,
		RequestID:   newRequestID(),
	}
	token, jti, err := f.e.issuer.Issue(ctx, claims)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrIssue, err)
	}
	err = f.e.publish(ctx, f.log, sessions.AgentMessage{Type: "verified", Call: f.start.CallID,
		Level: string(out.Level), Request: string(f.res.Request), AMR: claims.AMR, Token: token})
	if err != nil {
		return fmt.Errorf("%w: deliver to agent: %v", ErrIssue, err)
	}
	f.res.Outcome, f.res.Reason, f.res.Level, f.res.JTI = "verified", "verified", out.Level, jti
	f.log.Info("caller verified", zap.String("level", string(out.Level)), zap.String("jti", jti))
	return nil
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
