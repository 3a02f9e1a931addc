package otp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"

	"github.com/callproof/callproof/sessions/otp"
)

const (
	ada   = "subject-ada"   // stands for kba.SubjectKey of a known account
	ghost = "subject-ghost" // an account number that is not in the directory
)

var adaContacts = []otp.Contact{{Channel: otp.ChannelSMS, To: "+14155550100"}, {Channel: otp.ChannelEmail, To: "ada@example.com"}}

type fixture struct {
	svc   *otp.Service
	store *otp.Memory
	sms   *recorder
	email *recorder
}

func newFixture(t *testing.T, cfg otp.Config, opts ...otp.Option) fixture {
	t.Helper()
	if cfg.HMACKey == nil {
		cfg.HMACKey = testKey
	}
	f := fixture{store: otp.NewMemory(), sms: &recorder{}, email: &recorder{}}
	svc, err := otp.NewService(cfg, f.store, &otp.Router{SMS: f.sms, Email: f.email}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

func (f fixture) send(t *testing.T, subject string, contacts []otp.Contact) otp.Sent {
	t.Helper()
	sent, err := f.svc.Send(t.Context(), otp.SendRequest{Subject: subject, Call: "CA1", Locale: "en-US", Contacts: contacts})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return sent
}

func (f fixture) check(t *testing.T, subject, keyed string, want otp.Result, wantErr error) {
	t.Helper()
	got, err := f.svc.Check(t.Context(), subject, keyed)
	if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
		t.Fatalf("check: err %v, want %v", err, wantErr)
	}
	if got != want {
		t.Fatalf("check: %+v, want %+v", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	k := testKey
	for _, tc := range []struct {
		name string
		cfg  otp.Config
		ok   bool
	}{
		{"defaults", otp.Config{HMACKey: k}, true},
		{"ten digits", otp.Config{Digits: 10, HMACKey: k}, true},
		{"five digits", otp.Config{Digits: 5, HMACKey: k}, false},
		{"eleven digits", otp.Config{Digits: 11, HMACKey: k}, false},
		{"ten minutes", otp.Config{TTL: 10 * time.Minute, HMACKey: k}, true},
		{"eleven minutes", otp.Config{TTL: 11 * time.Minute, HMACKey: k}, false},
		{"negative ttl", otp.Config{TTL: -time.Second, HMACKey: k}, false},
		{"max checks 11", otp.Config{MaxChecks: 11, HMACKey: k}, false},
		{"max sends 11", otp.Config{MaxSendsPerSubject: 11, HMACKey: k}, false},
		{"window shorter than ttl", otp.Config{SendWindow: time.Minute, HMACKey: k}, false},
		{"resend gap not below window", otp.Config{ResendAfter: time.Hour, HMACKey: k}, false},
		{"no key", otp.Config{}, false},
		{"short key", otp.Config{HMACKey: k[:15]}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, otp.ErrInvalidConfig)) {
				t.Fatalf("Validate() = %v, ok want %v", err, tc.ok)
			}
			if err != nil && bytes.Contains([]byte(err.Error()), k[:8]) {
				t.Fatalf("error names the key: %v", err)
			}
		})
	}
}

func TestSendThenCheckOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, otp.Config{})
		start := time.Now()
		sent := f.send(t, ada, adaContacts)
		want := otp.Sent{Channel: otp.ChannelSMS, MaskedTo: "***0100", ExpiresAt: start.Add(otp.DefaultTTL)}
		if sent != want {
			t.Fatalf("sent %+v, want %+v", sent, want)
		}
		m := f.sms.last(t)
		if m.To != "+14155550100" || m.Call != "CA1" || m.Locale != "en-US" || !m.ExpiresAt.Equal(want.ExpiresAt) {
			t.Fatalf("message %v", m)
		}
		if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(m.Code.Reveal()) {
			t.Fatalf("code has %d characters, want 6 digits", m.Code.Len())
		}
		if rec, ok, _ := f.store.Load(t.Context(), ada); !ok || bytes.Contains(rec.MAC, []byte(m.Code.Reveal())) || rec.MaskedTo != "***0100" || rec.Sends != 1 {
			t.Fatalf("stored record %+v", rec)
		}
		wrong := wrongCode(m.Code.Reveal())
		f.check(t, ada, wrong, otp.Result{Remaining: 4}, nil)
		f.check(t, ada, m.Code.Reveal()+"#", otp.Result{OK: true}, nil)
		f.check(t, ada, m.Code.Reveal(), otp.Result{}, otp.ErrNoCode) // single use
		f.check(t, "nobody", m.Code.Reveal(), otp.Result{}, otp.ErrNoCode)
		if _, err := f.svc.Check(t.Context(), "", "1"); !errors.Is(err, otp.ErrBadSubject) {
			t.Fatalf("empty subject: %v", err)
		}
		// Success resets the failure count: the next code gets all five checks.
		time.Sleep(otp.DefaultResendAfter)
		f.send(t, ada, adaContacts)
		f.check(t, ada, wrongCode(f.sms.last(t).Code.Reveal()), otp.Result{Remaining: 4}, nil)
	})
}

func wrongCode(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, otp.Config{TTL: 2 * time.Minute})
		f.send(t, ada, adaContacts)
		early := f.sms.last(t).Code.Reveal()
		f.send(t, "subject-bob", []otp.Contact{{Channel: otp.ChannelSMS, To: "+14155550111"}})
		late := f.sms.last(t).Code.Reveal()

		time.Sleep(2*time.Minute - time.Second)
		f.check(t, ada, early, otp.Result{OK: true}, nil)
		time.Sleep(time.Second)
		f.check(t, "subject-bob", late, otp.Result{}, otp.ErrExpired)
		f.check(t, "subject-bob", wrongCode(late), otp.Result{}, otp.ErrExpired)
		// The record outlives the code until the send window ends, then lapses.
		time.Sleep(otp.DefaultSendWindow)
		f.check(t, "subject-bob", late, otp.Result{}, otp.ErrNoCode)
		if n := f.store.Len(); n > 2 {
			t.Fatalf("store holds %d records", n)
		}
	})
}

func TestFiveChecksThenExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, otp.Config{})
		f.send(t, ada, adaContacts)
		code := f.sms.last(t).Code.Reveal()
		for i, keyed := range []string{wrongCode(code), "", "12ab", code + "0", "9999999999999999999999999999999999999"} {
			f.check(t, ada, keyed, otp.Result{Remaining: 4 - i}, nil)
		}
		f.check(t, ada, code, otp.Result{}, otp.ErrExhausted) // the code is dead, right or wrong
		f.check(t, ada, wrongCode(code), otp.Result{}, otp.ErrExhausted)

		// No new code until the record lapses: a resend would reset nothing anyway.
		time.Sleep(otp.DefaultResendAfter)
		_, err := f.svc.Send(t.Context(), otp.SendRequest{Subject: ada, Contacts: adaContacts})
		var rl *otp.RateLimitError
		if !errors.As(err, &rl) || rl.Reason != otp.ReasonExhausted || !errors.Is(err, otp.ErrExhausted) || !errors.Is(err, otp.ErrRateLimited) {
			t.Fatalf("send after exhaustion: %v", err)
		}
		if want := otp.DefaultSendWindow - otp.DefaultResendAfter; rl.RetryAfter != want {
			t.Fatalf("retry after %v, want %v", rl.RetryAfter, want)
		}
		time.Sleep(rl.RetryAfter)
		f.send(t, ada, adaContacts)
		f.check(t, ada, f.sms.last(t).Code.Reveal(), otp.Result{OK: true}, nil)
	})
}

func TestResendRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, otp.Config{})
		start := time.Now()
		f.send(t, ada, adaContacts)
		first := f.sms.last(t).Code.Reveal()

		// Gap: a resend within 30 s is refused and says when it may come.
		time.Sleep(10 * time.Second)
		_, err := f.svc.Send(t.Context(), otp.SendRequest{Subject: ada, Contacts: adaContacts})
		var rl *otp.RateLimitError
		if !errors.As(err, &rl) || rl.Reason != otp.ReasonResendGap || rl.RetryAfter != 20*time.Second {
			t.Fatalf("early resend: %v", err)
		}
		if errors.Is(err, otp.ErrExhausted) {
			t.Fatal("a resend gap is not exhaustion")
		}

		// Two failures on the first code, then a resend: the count carries over.
		f.check(t, ada, wrongCode(first), otp.Result{Remaining: 4}, nil)
		f.check(t, ada, wrongCode(first), otp.Result{Remaining: 3}, nil)
		time.Sleep(rl.RetryAfter)
		f.send(t, ada, adaContacts)
		second := f.sms.last(t).Code.Reveal()
		if second == first {
			t.Fatal("resend reused the code")
		}
		f.check(t, ada, first, otp.Result{Remaining: 2}, nil) // the old code is gone, and that try counts
		f.check(t, ada, wrongCode(second), otp.Result{Remaining: 1}, nil)

		// Cap: three sends per window.
		time.Sleep(otp.DefaultResendAfter)
		f.send(t, ada, adaContacts)
		time.Sleep(otp.DefaultResendAfter)
		_, err = f.svc.Send(t.Context(), otp.SendRequest{Subject: ada, Contacts: adaContacts})
		if !errors.As(err, &rl) || rl.Reason != otp.ReasonSendCap {
			t.Fatalf("fourth send: %v", err)
		}
		if want := start.Add(otp.DefaultSendWindow).Sub(time.Now()); rl.RetryAfter != want {
			t.Fatalf("retry after %v, want %v", rl.RetryAfter, want)
		}
		// The third code still works, with the one check it has left.
		f.check(t, ada, f.sms.last(t).Code.Reveal(), otp.Result{OK: true}, nil)
		if n := len(f.sms.all()); n != 3 {
			t.Fatalf("%d messages delivered, want 3", n)
		}
		time.Sleep(rl.RetryAfter)
		f.send(t, ada, adaContacts)
	})
}

func TestUnknownAccountLooksAlike(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, otp.Config{})
		f.sms.delay = 200 * time.Millisecond // what a real delivery takes

		send := func(subject string, contacts []otp.Contact) (otp.Sent, time.Duration, error) {
			start := time.Now()
			s, err := f.svc.Send(t.Context(), otp.SendRequest{Subject: subject, Call: "CA1", Locale: "en-US", Contacts: contacts})
			return s, time.Since(start), err
		}
		for range 8 { // let the latency estimate learn
			s := fmt.Sprint(time.Now().UnixNano())
			if _, _, err := send(s, adaContacts); err != nil {
				t.Fatal(err)
			}
		}
		known, tk, err := send(ada, adaContacts)
		if err != nil {
			t.Fatal(err)
		}
		delivered := len(f.sms.all())
		unknown, tu, err := send(ghost, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.sms.all()) != delivered || len(f.email.all()) != 0 {
			t.Fatal("the unknown account got a delivery")
		}
		if unknown.Channel != known.Channel || !unknown.ExpiresAt.Equal(known.ExpiresAt.Add(tk)) {
			t.Fatalf("sent differs: known %+v, unknown %+v", known, unknown)
		}
		shape := regexp.MustCompile(`^\*\*\*[0-9]{4}$`)
		if !shape.MatchString(known.MaskedTo) || !shape.MatchString(unknown.MaskedTo) {
			t.Fatalf("masked destinations differ in shape: %q, %q", known.MaskedTo, unknown.MaskedTo)
		}
		if tu < tk/2 || tu > tk*2 {
			t.Fatalf("unknown took %v, known %v", tu, tk)
		}

		// Checks, exhaustion and rate limits answer alike.
		for i := range 5 {
			rk, errK := f.svc.Check(t.Context(), ada, "000000")
			ru, errU := f.svc.Check(t.Context(), ghost, "000000")
			if rk != ru || (errK == nil) != (errU == nil) {
				t.Fatalf("check %d: known %+v %v, unknown %+v %v", i, rk, errK, ru, errU)
			}
		}
		_, errK := f.svc.Check(t.Context(), ada, "000000")
		_, errU := f.svc.Check(t.Context(), ghost, "000000")
		if !errors.Is(errK, otp.ErrExhausted) || !errors.Is(errU, otp.ErrExhausted) {
			t.Fatalf("sixth check: known %v, unknown %v", errK, errU)
		}
		_, _, errK = send(ada, adaContacts)
		_, _, errU = send(ghost, nil)
		if errK == nil || errU == nil || errK.Error() != errU.Error() {
			t.Fatalf("send after exhaustion: known %v, unknown %v", errK, errU)
		}

		// The decoy destination is stable for an account number, so a second call cannot
		// tell it apart by a changed number.
		time.Sleep(otp.DefaultSendWindow)
		again, _, err := send(ghost, nil)
		if err != nil || again.MaskedTo != unknown.MaskedTo {
			t.Fatalf("second decoy %+v (%v), first %+v", again, err, unknown)
		}

		// A customer none of whose contacts has a sender takes the decoy path too.
		f2 := newFixture(t, otp.Config{})
		svc, err := otp.NewService(otp.Config{HMACKey: testKey}, otp.NewMemory(), &otp.Router{SMS: f2.sms})
		if err != nil {
			t.Fatal(err)
		}
		s, err := svc.Send(t.Context(), otp.SendRequest{Subject: ada, Contacts: []otp.Contact{{Channel: otp.ChannelEmail, To: "ada@example.com"}, {Channel: "fax", To: "1"}}})
		if err != nil || s.Channel != otp.ChannelSMS || !shape.MatchString(s.MaskedTo) || len(f2.sms.all()) != 0 {
			t.Fatalf("undeliverable contacts: %+v %v", s, err)
		}
	})
}

func TestEmailOnlyAndDecoyEmail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		email := &recorder{}
		svc, err := otp.NewService(otp.Config{HMACKey: testKey}, otp.NewMemory(), &otp.Router{Email: email})
		if err != nil {
			t.Fatal(err)
		}
		s, err := svc.Send(t.Context(), otp.SendRequest{Subject: ada, Contacts: adaContacts})
		if err != nil || s.Channel != otp.ChannelEmail || s.MaskedTo != "a***@e***.com" || len(email.all()) != 1 {
			t.Fatalf("email-only: %+v %v", s, err)
		}
		d, err := svc.Send(t.Context(), otp.SendRequest{Subject: ghost})
		if err != nil || d.Channel != otp.ChannelEmail || !regexp.MustCompile(`^[a-z]\*\*\*@[a-z]\*\*\*\.com$`).MatchString(d.MaskedTo) {
			t.Fatalf("email decoy: %+v %v", d, err)
		}
	})
}

func TestGlobalLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, otp.Config{}, otp.WithGlobalLimit(60, 2))
		f.send(t, "s1", adaContacts)
		// A per-subject refusal gives its token back.
		if _, err := f.svc.Send(t.Context(), otp.SendRequest{Subject: "s1", Contacts: adaContacts}); !errors.Is(err, otp.ErrRateLimited) {
			t.Fatalf("resend: %v", err)
		}
		f.send(t, "s2", nil) // unknown accounts spend the budget too
		_, err := f.svc.Send(t.Context(), otp.SendRequest{Subject: "s3", Contacts: adaContacts})
		var rl *otp.RateLimitError
		if !errors.As(err, &rl) || rl.Reason != otp.ReasonGlobal || rl.RetryAfter != time.Second {
			t.Fatalf("third send: %v", err)
		}
		time.Sleep(time.Second)
		f.send(t, "s3", adaContacts)

		off := newFixture(t, otp.Config{}, otp.WithGlobalLimit(0, 0))
		for i := range 50 {
			off.send(t, fmt.Sprint("s", i), adaContacts)
		}
	})
}

func TestDeliveryFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logs := observed(t)
		f := newFixture(t, otp.Config{}, otp.WithLogger(log), otp.WithRand(&codeReader{codes: []string{"739184"}}))
		f.sms.err = errors.New("gateway said: bad message 'Your code is 739184'")
		sent, err := f.svc.Send(t.Context(), otp.SendRequest{Subject: ada, Call: "CA9", Contacts: adaContacts})
		if !errors.Is(err, otp.ErrDelivery) || sent.MaskedTo != "***0100" {
			t.Fatalf("send: %+v %v", sent, err)
		}
		if rec, ok, _ := f.store.Load(t.Context(), ada); !ok || rec.Sends != 1 {
			t.Fatalf("a failed delivery still counts as a send: %+v", rec)
		}
		f.sms.err = fmt.Errorf("%w: plain failure", otp.ErrDelivery)
		time.Sleep(otp.DefaultResendAfter)
		_, err2 := f.svc.Send(t.Context(), otp.SendRequest{Subject: ada, Contacts: adaContacts})
		if !errors.Is(err2, otp.ErrDelivery) || err2.Error() != "otp: delivery failed: plain failure" {
			t.Fatalf("second send: %v", err2)
		}
		assertNoSecret(t, logs, []error{err, err2}, "739184", "+14155550100")
	})
}

func TestStoreFailsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := otp.NewMemory(otp.WithMaxRecords(1))
		svc, err := otp.NewService(otp.Config{HMACKey: testKey}, store, &otp.Router{SMS: &recorder{}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Send(t.Context(), otp.SendRequest{Subject: "a", Contacts: adaContacts}); err != nil {
			t.Fatal(err)
		}
		_, err = svc.Send(t.Context(), otp.SendRequest{Subject: "b", Contacts: adaContacts})
		if !errors.Is(err, otp.ErrUnavailable) || !errors.Is(err, otp.ErrFull) {
			t.Fatalf("full store: %v", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := svc.Check(ctx, "a", "123456"); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled check: %v", err)
		}
	})
}

func TestNewServiceRejects(t *testing.T) {
	if _, err := otp.NewService(otp.Config{HMACKey: testKey}, nil, &otp.Router{}); !errors.Is(err, otp.ErrInvalidConfig) {
		t.Fatalf("nil store: %v", err)
	}
	if _, err := otp.NewService(otp.Config{}, otp.NewMemory(), &otp.Router{}); !errors.Is(err, otp.ErrInvalidConfig) {
		t.Fatalf("no key: %v", err)
	}
	svc, err := otp.NewService(otp.Config{HMACKey: testKey, Digits: 8}, otp.NewMemory(), &otp.Router{})
	if err != nil {
		t.Fatal(err)
	}
	if c := svc.Config(); c.HMACKey != nil || c.Digits != 8 || c.MaxChecks != 5 || c.TTL != otp.DefaultTTL {
		t.Fatalf("Config() = %+v", c)
	}
}

// TestNoCodeInLogsOrErrors runs every outcome of Send and Check with a recording logger and
// looks for the codes in every log line and error.
func TestNoCodeInLogsOrErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logs := observed(t)
		codes := []string{"739184", "462817", "385926", "918273", "650419"}
		f := newFixture(t, otp.Config{}, otp.WithLogger(log), otp.WithRand(&codeReader{codes: codes}), otp.WithGlobalLimit(60, 3))
		var errs []error
		keep := func(_ any, err error) { errs = append(errs, err) }
		keep(f.svc.Send(t.Context(), otp.SendRequest{Subject: ada, Call: "CA1", Contacts: adaContacts}))
		keep(f.svc.Send(t.Context(), otp.SendRequest{Subject: ada, Call: "CA1", Contacts: adaContacts}))
		keep(f.svc.Send(t.Context(), otp.SendRequest{Subject: ghost, Call: "CA2"}))
		keep(f.svc.Send(t.Context(), otp.SendRequest{Subject: "x", Call: "CA3", Contacts: []otp.Contact{{Channel: "fax", To: "1"}}}))
		keep(f.svc.Send(t.Context(), otp.SendRequest{Subject: "y", Call: "CA4", Contacts: adaContacts}))
		for _, k := range []string{codes[1], codes[0] + "#", codes[0]} {
			keep(f.svc.Check(t.Context(), ada, k))
		}
		for range 6 {
			keep(f.svc.Check(t.Context(), ghost, codes[2]))
		}
		time.Sleep(otp.MaxTTL)
		keep(f.svc.Check(t.Context(), "y", codes[4]))
		if got := f.sms.last(t).Code.Reveal(); got != codes[0] {
			t.Fatalf("fixture: first code %s", got)
		}
		assertNoSecret(t, logs, errs, codes...)
		if logs.FilterMessage("otp: sent").Len() == 0 || logs.FilterMessage("otp: send refused").Len() == 0 {
			t.Fatalf("expected send and refusal lines, got %d entries", logs.Len())
		}
	})
}

func TestPasscodeRedacted(t *testing.T) {
	m := otp.Message{To: "+14155550100", Channel: otp.ChannelSMS, Code: "739184", Call: "CA1"}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		out = append(out, fmt.Sprintf(verb, m), fmt.Sprintf(verb, m.Code))
	}
	js, _ := m.Code.MarshalJSON()
	out = append(out, string(js), m.String())
	log, logs := observed(t)
	log.Info("m", zap.Any("msg", m), zap.Object("obj", m), zap.Any("code", m.Code), zap.Stringer("s", m.Code))
	for _, e := range logs.All() {
		out = append(out, fmt.Sprint(e.ContextMap()))
	}
	for _, s := range out {
		if bytes.Contains([]byte(s), []byte("739184")) {
			t.Errorf("code in %q", s)
		}
	}
	if m.Code.Reveal() != "739184" || m.Code.Len() != 6 {
		t.Fatal("Reveal")
	}
}

func TestConcurrentUseIsAtomic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, otp.Config{})
		sends := make(chan error, 10)
		for range 10 {
			go func() {
				_, err := f.svc.Send(t.Context(), otp.SendRequest{Subject: ada, Contacts: adaContacts})
				sends <- err
			}()
		}
		ok := 0
		for range 10 {
			if err := <-sends; err == nil {
				ok++
			} else if !errors.Is(err, otp.ErrRateLimited) {
				t.Fatal(err)
			}
		}
		if ok != 1 || len(f.sms.all()) != 1 {
			t.Fatalf("%d sends succeeded, %d delivered; want 1", ok, len(f.sms.all()))
		}
		code := f.sms.last(t).Code.Reveal()
		results := make(chan otp.Result, 10)
		for range 10 {
			go func() {
				r, _ := f.svc.Check(t.Context(), ada, code)
				results <- r
			}()
		}
		passed := 0
		for range 10 {
			if (<-results).OK {
				passed++
			}
		}
		if passed != 1 {
			t.Fatalf("the code passed %d times", passed)
		}
	})
}
