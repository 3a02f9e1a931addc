package ivr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/callproof/callproof/kba"
	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/mediatest"
	"github.com/callproof/callproof/sessions"
)

// fakePrompts serves a one-frame clip for any id in either locale and records what was asked.
type fakePrompts struct {
	mu      sync.Mutex
	locales []string
	missing string
}

func (p *fakePrompts) Clip(locale, id string) (*media.Clip, error) {
	p.mu.Lock()
	p.locales = append(p.locales, locale)
	p.mu.Unlock()
	if id == p.missing {
		return nil, errors.New("no such prompt")
	}
	return media.NewClip(id, make([]int16, media.FrameSamples*10))
}

type fakeIssuer struct {
	mu     sync.Mutex
	claims []sessions.Claims
	err    error
}

func (f *fakeIssuer) Issue(_ context.Context, c sessions.Claims) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", "", f.err
	}
	f.claims = append(f.claims, c)
	n := len(f.claims)
	return fmt.Sprintf("tok.%d", n), fmt.Sprintf("jti-%d", n), nil
}

type fakePublisher struct {
	mu   sync.Mutex
	msgs []sessions.AgentMessage
}

func (f *fakePublisher) Publish(_ context.Context, m sessions.AgentMessage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, m)
	return nil
}

func (f *fakePublisher) ofType(typ string) []sessions.AgentMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sessions.AgentMessage
	for _, m := range f.msgs {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// brokenAttempts is a store that cannot be reached.
type brokenAttempts struct{}

func (brokenAttempts) Check(context.Context, string) (sessions.LockState, error) {
	return sessions.LockState{}, sessions.ErrUnavailable
}
func (brokenAttempts) Fail(context.Context, string, sessions.Rule) (sessions.LockState, error) {
	return sessions.LockState{}, sessions.ErrUnavailable
}
func (brokenAttempts) Reset(context.Context, string) error { return sessions.ErrUnavailable }

type harness struct {
	engine   *Engine
	prompts  *fakePrompts
	issuer   *fakeIssuer
	pub      *fakePublisher
	attempts sessions.Attempts
	logs     *observer.ObservedLogs
	opts     []Option
}

func newHarness(t *testing.T, mutate ...func(*harness)) *harness {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	h := &harness{prompts: &fakePrompts{}, issuer: &fakeIssuer{}, pub: &fakePublisher{}, attempts: sessions.NewMemory(), logs: logs}
	for _, m := range mutate {
		m(h)
	}
	e, err := New(Config{}, h.prompts, kba.DemoDirectory(), h.attempts, h.issuer, h.pub,
		[]byte("0123456789abcdef0123456789abcdef"), append([]Option{WithLogger(zap.New(core))}, h.opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h.engine = e
	return h
}

// ada is the demo directory's first customer, as the flow tests' honest caller.
func ada(t *testing.T) *kba.Customer {
	t.Helper()
	c, ok := kba.DemoDirectory().ByID("cus_ada")
	if !ok {
		t.Fatal("demo directory has no cus_ada")
	}
	return c
}

// script answers prompts by id; an id with no answer is left unanswered.
func script(answers map[string]string) mediatest.Option {
	return mediatest.OnPlay(func(l *mediatest.Leg, id string) {
		if a, ok := answers[id]; ok {
			l.Press(a)
		}
	})
}

func honest(c *kba.Customer) map[string]string {
	a := map[string]string{"language_menu": "1", "request_menu": "1", "declaration": "1", "offer_opt_out": "2",
		"ask_account": c.Account + "#"}
	for _, f := range []kba.Factor{"dob", "zip", "ssn_last4", "pin", "last_payment"} {
		s, _ := kba.Spec(f)
		a[s.Prompt] = kba.AnswerDigits(c, f)
		if s.Terminator {
			a[s.Prompt] += "#"
		}
	}
	return a
}

func startFor(c *kba.Customer, params map[string]string) *media.Start {
	from := "+15555550123"
	if c != nil && len(c.Phones) > 0 {
		from = c.Phones[0]
	}
	return &media.Start{CallID: "CAtest", From: from, To: "+18005550199", Verstat: "TN-Validation-Passed-A", Params: params}
}

func (h *harness) run(t *testing.T, start *media.Start, opts ...mediatest.Option) (Result, error, *mediatest.Leg) {
	t.Helper()
	leg := mediatest.NewLeg(start, opts...)
	res, err := h.engine.Run(context.Background(), leg)
	select {
	case <-leg.Ended():
	default:
		t.Fatal("flow returned without hanging up the leg")
	}
	return res, err, leg
}

func TestFlowVerifiedThroughMenus(t *testing.T) {
	h := newHarness(t)
	c := ada(t)
	res, err, leg := h.run(t, startFor(c, nil), script(honest(c)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"welcome", "language_menu", "request_menu", "ask_account", "ask_dob", "ask_zip", "verified"}
	if got := leg.Played(); !slices.Equal(got, want) {
		t.Fatalf("prompts %v\nwant    %v", got, want)
	}
	if res.Outcome != "verified" || res.Request != "know_categories" || res.Level != "reasonable" || res.JTI != "jti-1" {
		t.Fatalf("result %+v", res)
	}
	cl := h.issuer.claims[0]
	if cl.Subject != "cus_ada" || cl.Call != "CAtest" || cl.ACR != "urn:callproof:ccpa:reasonable" ||
		!slices.Equal(cl.DataPoints, []string{"dob", "zip"}) || !cl.ANIMatch || cl.Verstat != "TN-Validation-Passed-A" ||
		cl.CCPARequest != "know_categories" || !strings.HasPrefix(cl.RequestID, "req_") || !slices.Contains(cl.AMR, "kba") {
		t.Fatalf("claims %+v", cl)
	}
	v := h.pub.ofType("verified")
	if len(v) != 1 || v[0].Token != "tok.1" || v[0].Level != "reasonable" {
		t.Fatalf("agent verified messages %+v", v)
	}
	var steps []string
	for _, m := range h.pub.ofType("step") {
		steps = append(steps, m.Step+":"+m.Result)
	}
	if want := []string{"language_menu:passed", "request_menu:passed", "ask_account:passed", "risk:passed", "dob:passed", "zip:passed"}; !slices.Equal(steps, want) {
		t.Fatalf("steps %v, want %v", steps, want)
	}
	calls := h.pub.ofType("call")
	if len(calls) != 2 || calls[0].State != "started" || calls[0].Caller != "***0100" || calls[1].State != "ended" {
		t.Fatalf("call messages %+v", calls)
	}
}

func TestFlowParametersSkipMenus(t *testing.T) {
	h := newHarness(t)
	c := ada(t)
	res, err, leg := h.run(t, startFor(c, map[string]string{"lang": "es-US", "request": "delete", "account": c.Account}), script(honest(c)))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"welcome", "ask_dob", "ask_zip", "verified"}; !slices.Equal(leg.Played(), want) {
		t.Fatalf("prompts %v, want %v", leg.Played(), want)
	}
	if res.Outcome != "verified" || res.Locale != "es-US" || res.Request != "delete" {
		t.Fatalf("result %+v", res)
	}
	for _, l := range h.prompts.locales {
		if l != "es-US" {
			t.Fatalf("prompt played in %s on a Spanish call", l)
		}
	}
}

func TestFlowSpanishChosenInMenu(t *testing.T) {
	h := newHarness(t)
	c := ada(t)
	a := honest(c)
	a["language_menu"] = "2"
	res, _, _ := h.run(t, startFor(c, nil), script(a))
	if res.Locale != "es-US" || res.Outcome != "verified" {
		t.Fatalf("result %+v", res)
	}
	if last := h.prompts.locales[len(h.prompts.locales)-1]; last != "es-US" {
		t.Fatalf("last prompt in %s", last)
	}
}

func TestFlowWrongAnswerThenLockout(t *testing.T) {
	h := newHarness(t)
	c := ada(t)
	wrong := honest(c)
	wrong["ask_zip"] = "00000"
	for i := 0; i < 3; i++ {
		res, err, leg := h.run(t, startFor(c, nil), script(wrong))
		if err != nil || res.Outcome != "not_verified" || res.Reason != "mismatch" {
			t.Fatalf("attempt %d: %+v %v", i+1, res, err)
		}
		if last := leg.Played()[len(leg.Played())-1]; last != "not_verified" {
			t.Fatalf("attempt %d ended with %s", i+1, last)
		}
	}
	if len(h.issuer.claims) != 0 {
		t.Fatal("a token was issued for a failed caller")
	}
	// Now even the right answers are refused, from any number.
	start := startFor(c, nil)
	start.From = "+12125550000"
	res, err, leg := h.run(t, start, script(honest(c)))
	if err != nil || res.Outcome != "locked_out" {
		t.Fatalf("after lockout: %+v %v", res, err)
	}
	if want := []string{"welcome", "language_menu", "request_menu", "ask_account", "locked_out"}; !slices.Equal(leg.Played(), want) {
		t.Fatalf("prompts %v, want %v", leg.Played(), want)
	}
	nv := h.pub.ofType("not_verified")
	if nv[len(nv)-1].Reason != "locked_out" {
		t.Fatalf("agent reason %q", nv[len(nv)-1].Reason)
	}
}

// An unknown account hears the same prompts, in the same order and number, as a known
// account given a wrong answer, and fails the same way.
func TestFlowUnknownAccountIndistinguishable(t *testing.T) {
	c := ada(t)
	wrong := honest(c)
	wrong["ask_dob"] = "01011990"
	h1 := newHarness(t)
	known, _, legKnown := h1.run(t, startFor(c, nil), script(wrong))

	unknown := honest(c)
	unknown["ask_account"] = "99999999#"
	h2 := newHarness(t)
	res, _, legUnknown := h2.run(t, startFor(c, nil), script(unknown))

	if !slices.Equal(legKnown.Played(), legUnknown.Played()) {
		t.Fatalf("known+wrong heard %v\nunknown heard     %v", legKnown.Played(), legUnknown.Played())
	}
	if known.Outcome != res.Outcome || known.Reason != res.Reason {
		t.Fatalf("known+wrong %+v, unknown %+v", known, res)
	}
	// The unknown account is locked out the same way after repeated failures.
	for i := 0; i < 2; i++ {
		h2.run(t, startFor(c, nil), script(unknown))
	}
	res, _, _ = h2.run(t, startFor(c, nil), script(unknown))
	if res.Outcome != "locked_out" {
		t.Fatalf("unknown account after 3 failures: %+v", res)
	}
}

func TestFlowNoInputReprompts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		c := ada(t)
		a := honest(c)
		delete(a, "ask_dob")
		began := time.Now()
		res, err, leg := h.run(t, startFor(c, nil), script(a))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"welcome", "language_menu", "request_menu", "ask_account", "ask_dob",
			"no_input", "ask_dob", "no_input", "ask_dob", "ask_zip", "not_verified"}
		if !slices.Equal(leg.Played(), want) {
			t.Fatalf("prompts %v\nwant    %v", leg.Played(), want)
		}
		if res.Outcome != "not_verified" {
			t.Fatalf("result %+v", res)
		}
		if took := time.Since(began); took != 15*time.Second {
			t.Fatalf("three first-digit timeouts took %v, want 15s", took)
		}
	})
}

func TestFlowInvalidInputReprompts(t *testing.T) {
	h := newHarness(t)
	c := ada(t)
	n := 0
	a := honest(c)
	leg := mediatest.NewLeg(startFor(c, nil), mediatest.OnPlay(func(l *mediatest.Leg, id string) {
		if id == "ask_dob" && n == 0 {
			n++
			l.Press("13452000") // month 13: not a date
			return
		}
		if ans, ok := a[id]; ok {
			l.Press(ans)
		}
	}))
	res, err := h.engine.Run(context.Background(), leg)
	if err != nil || res.Outcome != "verified" {
		t.Fatalf("%+v %v", res, err)
	}
	want := []string{"welcome", "language_menu", "request_menu", "ask_account", "ask_dob", "invalid_input", "ask_dob", "ask_zip", "verified"}
	if !slices.Equal(leg.Played(), want) {
		t.Fatalf("prompts %v\nwant    %v", leg.Played(), want)
	}
}

// A digit during a prompt clears playback and counts as the first digit of the answer.
func TestFlowBargeIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		c := ada(t)
		a := honest(c)
		leg := mediatest.NewLeg(startFor(c, nil), mediatest.HoldMarks(), mediatest.OnPlay(func(l *mediatest.Leg, id string) {
			if ans, ok := a[id]; ok {
				l.Press(ans) // while the prompt is still "playing"
			} else if id == "welcome" {
				go func() { time.Sleep(time.Second); l.Finish() }()
			}
		}))
		done := make(chan Result)
		go func() {
			res, _ := h.engine.Run(context.Background(), leg)
			done <- res
		}()
		// Marks of the final prompt are held too: acknowledge them so the flow can finish.
		go func() {
			for {
				select {
				case <-leg.Ended():
					return
				case <-time.After(3 * time.Second):
					leg.Finish()
				}
			}
		}()
		res := <-done
		if res.Outcome != "verified" {
			t.Fatalf("result %+v", res)
		}
		if leg.Cleared() < 5 {
			t.Fatalf("cleared %d times, want one per answered question", leg.Cleared())
		}
	})
}

// Digits keyed ahead answer the next questions and cut their prompts short.
func TestFlowTypeAhead(t *testing.T) {
	h := newHarness(t)
	c := ada(t)
	a := honest(c)
	leg := mediatest.NewLeg(startFor(c, nil), mediatest.OnPlay(func(l *mediatest.Leg, id string) {
		if id == "welcome" {
			l.Press("1" + "1" + a["ask_account"] + a["ask_dob"] + a["ask_zip"])
		}
	}))
	res, err := h.engine.Run(context.Background(), leg)
	if err != nil || res.Outcome != "verified" {
		t.Fatalf("%+v %v (prompts %v)", res, err, leg.Played())
	}
}

func TestFlowHangupMidway(t *testing.T) {
	h := newHarness(t)
	c := ada(t)
	a := honest(c)
	leg := mediatest.NewLeg(startFor(c, nil), mediatest.OnPlay(func(l *mediatest.Leg, id string) {
		if id == "ask_zip" {
			l.HangUp()
			return
		}
		if ans, ok := a[id]; ok {
			l.Press(ans)
		}
	}))
	res, err := h.engine.Run(context.Background(), leg)
	if err != nil || res.Reason != "hangup" || res.Outcome != "" {
		t.Fatalf("%+v %v", res, err)
	}
	if len(h.issuer.claims) != 0 || len(h.pub.ofType("verified")) != 0 {
		t.Fatal("verified after hangup")
	}
}

func TestFlowFailsClosed(t *testing.T) {
	c := ada(t)
	cases := []struct {
		name   string
		mutate func(*harness)
	}{
		{"store unavailable", func(h *harness) { h.attempts = brokenAttempts{} }},
		{"store known down at call start", func(h *harness) {
			h.opts = append(h.opts, WithAvailability(func() error { return errors.New("redis down") }))
		}},
		{"signer fails", func(h *harness) { h.issuer.err = errors.New("hsm offline") }},
		{"prompt missing", func(h *harness) { h.prompts.missing = "ask_zip" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.mutate)
			res, err, leg := h.run(t, startFor(c, nil), script(honest(c)))
			if err == nil {
				t.Fatal("no error for a failure of ours")
			}
			if res.Outcome != "technical_difficulty" || res.JTI != "" {
				t.Fatalf("result %+v", res)
			}
			if len(h.pub.ofType("verified")) != 0 {
				t.Fatal("agent told verified")
			}
			nv := h.pub.ofType("not_verified")
			if len(nv) == 0 || nv[len(nv)-1].Reason != "technical_difficulty" {
				t.Fatalf("agent not told why: %+v", nv)
			}
			if tc.name != "prompt missing" {
				if last := leg.Played()[len(leg.Played())-1]; last != "technical_difficulty" {
					t.Fatalf("caller last heard %s", last)
				}
			}
		})
	}
}

func TestFlowKnowSpecificNeedsDeclaration(t *testing.T) {
	c := ada(t)
	for _, tc := range []struct {
		decl    string
		outcome string
	}{{"1", "verified"}, {"2", "partially_verified"}} {
		h := newHarness(t)
		a := honest(c)
		a["declaration"] = tc.decl
		res, _, leg := h.run(t, startFor(c, map[string]string{"request": "know_specific"}), script(a))
		if res.Outcome != tc.outcome {
			t.Fatalf("declaration %s: %+v", tc.decl, res)
		}
		want := []string{"welcome", "language_menu", "ask_account", "ask_dob", "ask_zip", "ask_ssn_last4", "declaration", tc.outcome}
		if !slices.Equal(leg.Played(), want) {
			t.Fatalf("prompts %v\nwant    %v", leg.Played(), want)
		}
		cl := h.issuer.claims[0]
		switch tc.outcome {
		case "verified":
			if !cl.Declaration || cl.ACR != "urn:callproof:ccpa:reasonably-high" || cl.CCPARequest != "know_specific" {
				t.Fatalf("claims %+v", cl)
			}
		default: // §7024(a): handled as a request to know categories
			if cl.Declaration || cl.ACR != "urn:callproof:ccpa:reasonable" || cl.CCPARequest != "know_categories" ||
				res.VerifiedRequest != "know_categories" {
				t.Fatalf("fallback claims %+v result %+v", cl, res)
			}
			v := h.pub.ofType("verified")
			if len(v) != 1 || v[0].Request != "know_categories" || !strings.Contains(v[0].Reason, "downgraded") {
				t.Fatalf("agent message %+v", v)
			}
		}
	}
}

// A caller with no carrier attestation, or after a recent failure, answers one more question,
// and the token says risk shaped the verification.
func TestFlowRiskStepUp(t *testing.T) {
	c := ada(t)
	for _, tc := range []struct {
		name    string
		verstat string
	}{{"unattested", "No-TN-Validation"}, {"gateway attestation", "TN-Validation-Passed-C"}, {"failed attestation", "TN-Validation-Failed"}} {
		h := newHarness(t)
		start := startFor(c, map[string]string{"request": "delete"})
		start.Verstat = tc.verstat
		res, _, leg := h.run(t, start, script(honest(c)))
		want := []string{"welcome", "language_menu", "ask_account", "ask_dob", "ask_zip", "ask_ssn_last4", "verified"}
		if res.Outcome != "verified" || !slices.Equal(leg.Played(), want) {
			t.Fatalf("%s: %+v prompts %v", tc.name, res, leg.Played())
		}
		if cl := h.issuer.claims[0]; !slices.Contains(cl.AMR, "rba") || len(cl.DataPoints) != 3 {
			t.Fatalf("%s: claims %+v", tc.name, cl)
		}
	}
	// One failed session on the account: the next caller steps up too, whatever the number.
	h := newHarness(t)
	wrong := honest(c)
	wrong["ask_zip"] = "00000"
	h.run(t, startFor(c, nil), script(wrong))
	_, _, leg := h.run(t, startFor(c, nil), script(honest(c)))
	if !slices.Contains(leg.Played(), "ask_ssn_last4") {
		t.Fatalf("no step-up after a failure: %v", leg.Played())
	}
}

// A correction is never verified with the field being corrected (§7060(h)).
func TestFlowCorrectionSkipsTheCorrectedField(t *testing.T) {
	c := ada(t)
	h := newHarness(t)
	a := honest(c)
	a["request_menu"] = "4"
	a["correct_menu"] = "1" // date of birth
	res, _, leg := h.run(t, startFor(c, nil), script(a))
	want := []string{"welcome", "language_menu", "request_menu", "correct_menu", "ask_account", "ask_zip", "ask_ssn_last4", "verified"}
	if res.Outcome != "verified" || res.CorrectField != "dob" || !slices.Equal(leg.Played(), want) {
		t.Fatalf("%+v prompts %v", res, leg.Played())
	}
	if dp := h.issuer.claims[0].DataPoints; slices.Contains(dp, "dob") {
		t.Fatalf("correction of dob verified with dob: %v", dp)
	}
	h = newHarness(t)
	res, _, leg = h.run(t, startFor(c, map[string]string{"request": "correct", "correct_field": "zip"}), script(honest(c)))
	if res.CorrectField != "zip" || slices.Contains(leg.Played(), "ask_zip") || slices.Contains(leg.Played(), "correct_menu") {
		t.Fatalf("%+v prompts %v", res, leg.Played())
	}
}

// A failed deletion offers the opt-out, which needs no verification (§7060(b)).
func TestFlowFailedDeleteOffersOptOut(t *testing.T) {
	c := ada(t)
	for _, choice := range []string{"1", "2"} {
		h := newHarness(t)
		a := honest(c)
		a["ask_dob"] = "01011990"
		a["offer_opt_out"] = choice
		res, _, leg := h.run(t, startFor(c, map[string]string{"request": "delete"}), script(a))
		want := []string{"welcome", "language_menu", "ask_account", "ask_dob", "ask_zip", "not_verified", "offer_opt_out"}
		if choice == "1" {
			want = append(want, "opt_out_confirmed", "goodbye")
		}
		if res.Outcome != "not_verified" || res.OptOut != (choice == "1") || !slices.Equal(leg.Played(), want) {
			t.Fatalf("choice %s: %+v prompts %v", choice, res, leg.Played())
		}
	}
}

// The calling number is locked too: failures against different accounts from one number lock
// that number for every account.
func TestFlowCallerNumberLockout(t *testing.T) {
	h := newHarness(t)
	dir := kba.DemoDirectory()
	for i, c := range dir.Customers() {
		wrong := honest(c)
		wrong["ask_dob"] = "01011990"
		start := startFor(c, nil)
		start.From = "+12025550111"
		if res, _, _ := h.run(t, start, script(wrong)); res.Outcome != "not_verified" {
			t.Fatalf("attempt %d: %+v", i+1, res)
		}
	}
	start := startFor(ada(t), nil)
	start.From = "+12025550111"
	res, _, _ := h.run(t, start, script(honest(ada(t))))
	if res.Outcome != "locked_out" {
		t.Fatalf("number that failed three times at three accounts: %+v", res)
	}
}

// 1,000 calls at one account from rotating numbers get no more answer attempts than the
// lockout allows; the next caller hears locked_out and the agent sees why.
func TestAttackRotatingNumbersHitAccountLimit(t *testing.T) {
	h := newHarness(t)
	c := ada(t)
	wrong := honest(c)
	wrong["ask_dob"] = "01011990"
	answered := 0
	for i := 0; i < 1000; i++ {
		start := startFor(c, map[string]string{"request": "know_categories", "lang": "en-US"})
		start.From = fmt.Sprintf("+1202555%04d", i)
		start.CallID = fmt.Sprintf("CA%04d", i)
		_, _, leg := h.run(t, start, script(wrong))
		if slices.Contains(leg.Played(), "ask_dob") {
			answered++
		}
	}
	if limit := kba.DefaultLockout().MaxFailures; answered > limit {
		t.Fatalf("%d calls got to answer; the lockout allows %d", answered, limit)
	}
	start := startFor(c, map[string]string{"request": "know_categories"})
	start.CallID = "CAnext"
	res, _, leg := h.run(t, start, script(honest(c)))
	if res.Outcome != "locked_out" || leg.Played()[len(leg.Played())-1] != "locked_out" {
		t.Fatalf("next caller: %+v %v", res, leg.Played())
	}
	nv := h.pub.ofType("not_verified")
	if got := nv[len(nv)-1]; got.Call != "CAnext" || got.Reason != "locked_out" {
		t.Fatalf("agent sees %+v", got)
	}
	if len(h.issuer.claims) != 0 {
		t.Fatal("a token was issued during the attack")
	}
}

func TestFlowOptOutNeedsNoVerification(t *testing.T) {
	h := newHarness(t)
	c := ada(t)
	a := honest(c)
	a["request_menu"] = "5"
	res, err, leg := h.run(t, startFor(c, nil), script(a))
	if err != nil || res.Outcome != "opt_out_confirmed" || res.Request != "opt_out" {
		t.Fatalf("%+v %v", res, err)
	}
	want := []string{"welcome", "language_menu", "request_menu", "ask_account", "opt_out_confirmed", "goodbye"}
	if !slices.Equal(leg.Played(), want) {
		t.Fatalf("prompts %v, want %v", leg.Played(), want)
	}
	if len(h.issuer.claims) != 0 {
		t.Fatal("token issued for an opt-out")
	}
}

func TestOutcomeFor(t *testing.T) {
	cases := []struct {
		err             error
		outcome, reason string
		ours            bool
	}{
		{nil, "", "", false},
		{ErrHangup, "", "hangup", false},
		{fmt.Errorf("play: %w", ErrHangup), "", "hangup", false},
		{errLocked, "locked_out", "locked_out", false},
		{ErrNoInput, "not_verified", "no_input", false},
		{ErrInvalidInput, "not_verified", "invalid_input", false},
		{fmt.Errorf("%w: redis down", ErrStore), "technical_difficulty", "technical_difficulty", true},
		{ErrIssue, "technical_difficulty", "technical_difficulty", true},
		{ErrPrompt, "technical_difficulty", "technical_difficulty", true},
		{errors.New("unforeseen"), "technical_difficulty", "technical_difficulty", true},
	}
	for _, c := range cases {
		o, r, ours := outcomeFor(c.err)
		if o != c.outcome || r != c.reason || ours != c.ours {
			t.Errorf("outcomeFor(%v) = %q %q %v, want %q %q %v", c.err, o, r, ours, c.outcome, c.reason, c.ours)
		}
	}
}

// No log line carries what the caller keyed: run every path with the demo customers and scan
// the logs for their answers.
// It runs in a synctest bubble so that durations in the logs are exact and cannot contain a
// digit string by chance.
func TestLogsNeverContainAnswers(t *testing.T) {
	synctest.Test(t, testLogsNeverContainAnswers)
}

func testLogsNeverContainAnswers(t *testing.T) {
	dir := kba.DemoDirectory()
	for _, c := range dir.Customers() {
		h := newHarness(t)
		a := honest(c)
		h.run(t, startFor(c, map[string]string{"request": "know_specific"}), script(a))
		wrong := honest(c)
		wrong["ask_zip"] = "00000"
		h.run(t, startFor(c, nil), script(wrong))
		secrets := []string{c.Account, c.Zip, c.SSNLast4, c.PIN, kba.AnswerDigits(c, "dob"), "tok.1"}
		for _, p := range c.Phones {
			secrets = append(secrets, strings.TrimPrefix(p, "+"))
		}
		for _, e := range h.logs.All() {
			line := e.Message
			for k, v := range e.ContextMap() {
				line += fmt.Sprintf(" %s=%v", k, v)
			}
			for _, s := range secrets {
				if s != "" && strings.Contains(line, s) {
					t.Errorf("log line contains a caller's value %q: %s", s, line)
				}
			}
		}
		if h.logs.Len() == 0 {
			t.Fatal("no logs captured: the scan proves nothing")
		}
	}
}

// A platform's late echo of a cleared prompt's mark must not count for the next prompt: the
// flow waits for the final prompt's own mark before it hangs up, or the caller never hears it.
func TestFlowIgnoresLateMarkAfterClear(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		c := ada(t)
		a := honest(c)
		leg := mediatest.NewLeg(startFor(c, nil), mediatest.HoldMarks(), mediatest.OnPlay(func(l *mediatest.Leg, id string) {
			switch {
			case id == "ask_zip":
				l.Press(a[id])
				l.Mark("ask_zip", true) // the echo overtook our clear
			case a[id] != "":
				l.Press(a[id])
			case id == "welcome":
				l.Finish()
			}
		}))
		done := make(chan Result, 1)
		go func() {
			res, _ := h.engine.Run(context.Background(), leg)
			done <- res
		}()
		time.Sleep(time.Second) // well inside the verified prompt's fallback wait
		synctest.Wait()
		select {
		case <-leg.Ended():
			t.Fatalf("hung up before the verified prompt played (prompts %v)", leg.Played())
		default:
		}
		leg.Finish()
		if res := <-done; res.Outcome != "verified" {
			t.Fatalf("result %+v", res)
		}
	})
}

// fakePasscodes accepts "123456" for any subject it sent to, and records the contacts.
type fakePasscodes struct {
	mu    sync.Mutex
	sent  map[string][]Contact
	tries map[string]int
}

func (p *fakePasscodes) Send(_ context.Context, subject, _, _ string, to []Contact) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sent == nil {
		p.sent, p.tries = map[string][]Contact{}, map[string]int{}
	}
	p.sent[subject] = to
	if len(to) == 0 {
		return "sms", nil // unknown account: looks sent, nothing delivered
	}
	return to[0].Channel, nil
}

func (p *fakePasscodes) Check(_ context.Context, subject, keyed string) (bool, int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	to, ok := p.sent[subject]
	if !ok {
		return false, 0, ErrPasscodeRejected
	}
	p.tries[subject]++
	if p.tries[subject] > 5 {
		return false, 0, ErrPasscodeRejected
	}
	return len(to) > 0 && keyed == "123456", 5 - p.tries[subject], nil
}

func newAgentHarness(t *testing.T) (*harness, *fakePasscodes) {
	t.Helper()
	pc := &fakePasscodes{}
	h := newHarness(t)
	e, err := New(Config{}, h.prompts, kba.DemoDirectory(), h.attempts, h.issuer, h.pub,
		[]byte("0123456789abcdef0123456789abcdef"), WithPasscodes(pc))
	if err != nil {
		t.Fatal(err)
	}
	h.engine = e
	return h, pc
}

// An authorized agent (§7063) is verified for the consumer through a passcode sent to the
// consumer's contact on file; the token says it was an agent.
func TestFlowAuthorizedAgentPasscode(t *testing.T) {
	c := ada(t)
	h, pc := newAgentHarness(t)
	a := honest(c)
	a["agent_menu"] = "2"
	n := 0
	leg := mediatest.NewLeg(startFor(c, map[string]string{"request": "delete", "lang": "en-US"}),
		mediatest.OnPlay(func(l *mediatest.Leg, id string) {
			if id == "ask_otp" {
				n++
				if n == 1 {
					l.Press("654321#") // a wrong code first
				} else {
					l.Press("123456#")
				}
				return
			}
			if ans, ok := a[id]; ok {
				l.Press(ans)
			}
		}))
	res, err := h.engine.Run(context.Background(), leg)
	if err != nil || res.Outcome != "verified" || !res.Agent {
		t.Fatalf("%+v %v (prompts %v)", res, err, leg.Played())
	}
	want := []string{"welcome", "agent_menu", "ask_account", "ask_dob", "ask_zip", "ask_otp", "invalid_input", "ask_otp", "verified"}
	if !slices.Equal(leg.Played(), want) {
		t.Fatalf("prompts %v\nwant    %v", leg.Played(), want)
	}
	for _, to := range pc.sent {
		if len(to) == 0 || to[0].To != c.Phones[0] {
			t.Fatalf("passcode went to %v, not the contact on file", to)
		}
	}
	cl := h.issuer.claims[0]
	if !cl.AuthorizedAgent || !slices.Contains(cl.AMR, "otp") || !slices.Contains(cl.AMR, "sms") || !slices.Contains(cl.AMR, "mfa") {
		t.Fatalf("claims %+v", cl)
	}
	// An unknown account on the agent path hears the same prompts as a known one given a
	// wrong passcode, and nothing is delivered.
	h2, pc2 := newAgentHarness(t)
	u := honest(c)
	u["agent_menu"], u["ask_account"], u["ask_otp"] = "2", "99999999#", "123456#"
	start := startFor(c, map[string]string{"request": "delete", "lang": "en-US"})
	res, _, legU := h2.run(t, start, script(u))
	h3, _ := newAgentHarness(t)
	k := honest(c)
	k["agent_menu"], k["ask_otp"] = "2", "000000#"
	_, _, legK := h3.run(t, startFor(c, map[string]string{"request": "delete", "lang": "en-US"}), script(k))
	if res.Outcome != "not_verified" || !slices.Equal(legU.Played(), legK.Played()) {
		t.Fatalf("unknown %+v heard %v\nknown+wrong heard %v", res, legU.Played(), legK.Played())
	}
	for _, to := range pc2.sent {
		if len(to) != 0 {
			t.Fatalf("a passcode was addressed for an unknown account: %v", to)
		}
	}
}

// Lockouts back off: the second lock on an account number lasts twice the first.
func TestFlowLockoutBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		c := ada(t)
		wrong := honest(c)
		wrong["ask_zip"] = "00000"
		fail3 := func() {
			for i := 0; i < 3; i++ {
				start := startFor(c, nil)
				start.From = fmt.Sprintf("+1303555%04d", time.Now().Unix()%10000+int64(i)) // a new number each time
				h.run(t, start, script(wrong))
			}
		}
		locked := func() bool {
			res, _, _ := h.run(t, startFor(c, nil), script(honest(c)))
			return res.Outcome == "locked_out"
		}
		fail3()
		if !locked() {
			t.Fatal("not locked after three failures")
		}
		time.Sleep(31 * time.Minute)
		if locked() {
			t.Fatal("first lock outlasted 30 minutes")
		}
		fail3()
		time.Sleep(45 * time.Minute)
		if !locked() {
			t.Fatal("second lock did not back off to 60 minutes")
		}
		time.Sleep(16 * time.Minute)
		if locked() {
			t.Fatal("second lock outlasted 60 minutes")
		}
	})
}

// An operator's policy may ask the customer's authenticator code (RFC 6238); a code is good
// once within its step, and an unknown account is asked the same and fails the same.
func TestFlowTOTPFactor(t *testing.T) {
	c := ada(t)
	key, err := c.TOTPKey()
	if err != nil {
		t.Fatal(err)
	}
	ps := kba.DefaultPolicies()
	p := ps[kba.RequestKnowCategories]
	p.Factors = append([]kba.Factor{kba.FactorTOTP}, p.Factors...)
	ps[kba.RequestKnowCategories] = p
	mem := sessions.NewMemory()
	h := newHarness(t)
	e, err := New(Config{Policies: ps}, h.prompts, kba.DemoDirectory(), h.attempts, h.issuer, h.pub,
		[]byte("0123456789abcdef0123456789abcdef"), WithReplay(mem))
	if err != nil {
		t.Fatal(err)
	}
	h.engine = e
	a := honest(c)
	a["ask_totp"] = kba.TOTPCode(key, kba.TOTPStepAt(time.Now()), kba.TOTPDigits)
	params := map[string]string{"request": "know_categories", "lang": "en-US"}
	res, _, leg := h.run(t, startFor(c, params), script(a))
	if res.Outcome != "verified" || !slices.Equal(leg.Played(), []string{"welcome", "ask_account", "ask_totp", "ask_dob", "verified"}) {
		t.Fatalf("%+v prompts %v", res, leg.Played())
	}
	if cl := h.issuer.claims[0]; !slices.Contains(cl.AMR, "otp") || !slices.Contains(cl.DataPoints, "totp") {
		t.Fatalf("claims %+v", cl)
	}
	// The same code again is refused (replay), even right away.
	res, _, _ = h.run(t, startFor(c, params), script(a))
	if res.Outcome != "not_verified" {
		t.Fatalf("a replayed authenticator code verified: %+v", res)
	}
}

// A store known to be down at the start of a call ends it before the first menu: the caller
// hears technical_difficulty straight away instead of after keying an account number.
func TestFlowFailsFastWhenStoreKnownDown(t *testing.T) {
	c := ada(t)
	h := newHarness(t, func(h *harness) {
		h.opts = append(h.opts, WithAvailability(func() error { return errors.New("redis down") }))
	})
	res, err, leg := h.run(t, startFor(c, nil), script(honest(c)))
	if err == nil || res.Outcome != "technical_difficulty" {
		t.Fatalf("result %+v, %v", res, err)
	}
	if played := leg.Played(); len(played) == 0 || played[0] != "technical_difficulty" {
		t.Fatalf("caller heard %v, want technical_difficulty first", played)
	}
	// Available again: the next call runs as usual.
	h = newHarness(t, func(h *harness) { h.opts = append(h.opts, WithAvailability(func() error { return nil })) })
	if res, err, _ := h.run(t, startFor(c, nil), script(honest(c))); err != nil || res.Outcome != "verified" {
		t.Fatalf("with the store available: %+v, %v", res, err)
	}
}

// Waiting for the next event with a timeout allocates nothing once the conversation has its
// timer: a flow waits for an event after every prompt and digit of every call.
func TestNextReusesItsTimer(t *testing.T) {
	events := make(chan media.Event, 1)
	c := &conversation{events: events}
	ctx := context.Background()
	wait := func() {
		events <- media.Event{Type: media.EventDTMF, Digit: '1'}
		if ev, ok, err := c.next(ctx, time.Second); err != nil || !ok || ev.Digit != '1' {
			t.Fatalf("next: %+v %v %v", ev, ok, err)
		}
	}
	wait() // the first wait makes the timer
	if n := testing.AllocsPerRun(100, wait); n != 0 {
		t.Errorf("next with a timeout: %.1f allocations per wait, want 0", n)
	}
	// The reused timer still times out, and a stopped one leaves nothing behind.
	if _, ok, err := c.next(ctx, 20*time.Millisecond); ok || err != nil {
		t.Errorf("next with no event: ok %v, err %v; want a timeout", ok, err)
	}
	wait()
}
