package redis_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions/otp"
	"github.com/callproof/callproof/sessions/redis/redistest"
)

// lastCode is a sender that keeps the last code it was given, as a phone would.
type lastCode struct {
	mu   sync.Mutex
	code string
	n    int
}

func (l *lastCode) Send(_ context.Context, m otp.Message) error {
	l.mu.Lock()
	l.code = m.Code.Reveal()
	l.n++
	l.mu.Unlock()
	return nil
}

func (l *lastCode) For(string) otp.Sender { return l }

func (l *lastCode) last() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.code, l.n
}

// Two nodes share one passcode state: a code sent by one is checked on the other, once; the
// resend gap and the failure count hold across them.
func TestOTPStoreSharedAcrossNodes(t *testing.T) {
	addr, prefix := redistest.Addr(t), redistest.Prefix()
	phone := &lastCode{}
	cfg := otp.Config{HMACKey: []byte("0123456789abcdef0123456789abcdef")}
	a, err := otp.NewService(cfg, open(t, addr, prefix).OTPStore(), phone)
	if err != nil {
		t.Fatal(err)
	}
	b, err := otp.NewService(cfg, open(t, addr, prefix).OTPStore(), phone)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := otp.SendRequest{Subject: "subj-shared", Call: "CA1", Locale: "en-US",
		Contacts: []otp.Contact{{Channel: otp.ChannelSMS, To: "+14155550100"}}}
	if _, err := a.Send(ctx, req); err != nil {
		t.Fatalf("send on A: %v", err)
	}
	// The resend gap is the subject's, not the node's.
	if _, err := b.Send(ctx, req); !errors.Is(err, otp.ErrRateLimited) {
		t.Fatalf("send on B right after A: %v, want ErrRateLimited", err)
	}
	code, sends := phone.last()
	if sends != 1 {
		t.Fatalf("%d messages delivered, want 1", sends)
	}
	wrong := "000000"
	if wrong == code {
		wrong = "111111"
	}
	r, err := b.Check(ctx, "subj-shared", wrong)
	if err != nil || r.OK || r.Remaining != a.Config().MaxChecks-1 {
		t.Fatalf("wrong code on B: %+v, %v", r, err)
	}
	if r, err = a.Check(ctx, "subj-shared", wrong); err != nil || r.OK || r.Remaining != a.Config().MaxChecks-2 {
		t.Fatalf("wrong code on A after B's failure: %+v, %v (the failure count must be shared)", r, err)
	}
	if r, err = b.Check(ctx, "subj-shared", code); err != nil || !r.OK {
		t.Fatalf("right code on B: %+v, %v", r, err)
	}
	if _, err = a.Check(ctx, "subj-shared", code); !errors.Is(err, otp.ErrNoCode) {
		t.Fatalf("the same code again on A: %v, want ErrNoCode (single use across nodes)", err)
	}
}

// Concurrent updates of one record from several stores are serialised: none is lost.
func TestOTPStoreUpdatesAreAtomic(t *testing.T) {
	addr, prefix := redistest.Addr(t), redistest.Prefix()
	stores := []otp.Store{open(t, addr, prefix).OTPStore(), open(t, addr, prefix).OTPStore()}
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := stores[i%2].Update(context.Background(), "subj-race", func(cur otp.Record, found bool) (otp.Record, error) {
				cur.Failures++
				cur.KeepUntil = time.Now().Add(time.Minute)
				return cur, nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("update: %v", err)
		}
	}
	r, found, err := stores[0].Load(context.Background(), "subj-race")
	if err != nil || !found || r.Failures != n {
		t.Fatalf("after %d concurrent increments: %+v found %v err %v", n, r, found, err)
	}
}

// A record whose KeepUntil passed is deleted; fn's own error is returned unchanged and
// writes nothing; what is stored is a MAC and a masked destination, never the code.
func TestOTPStoreSemantics(t *testing.T) {
	addr, prefix := redistest.Addr(t), redistest.Prefix()
	s := open(t, addr, prefix).OTPStore()
	ctx := context.Background()
	keep := func(r otp.Record) func(otp.Record, bool) (otp.Record, error) {
		return func(otp.Record, bool) (otp.Record, error) { return r, nil }
	}
	if _, err := s.Update(ctx, "subj-sem", keep(otp.Record{Sends: 1, MAC: []byte{1, 2, 3}, MaskedTo: "***0100",
		KeepUntil: time.Now().Add(time.Minute)})); err != nil {
		t.Fatal(err)
	}
	mine := errors.New("refused by fn")
	if _, err := s.Update(ctx, "subj-sem", func(otp.Record, bool) (otp.Record, error) { return otp.Record{}, mine }); err != mine {
		t.Fatalf("fn's error: %v, want it unchanged", err)
	}
	if r, found, err := s.Load(ctx, "subj-sem"); err != nil || !found || r.Sends != 1 {
		t.Fatalf("after a refused update: %+v %v %v", r, found, err)
	}
	keys, err := raw(t, addr).Keys(ctx, prefix+"otp:*").Result()
	if err != nil || len(keys) != 1 || !strings.Contains(keys[0], "subj-sem") {
		t.Fatalf("keys %v, %v", keys, err)
	}
	if ttl := raw(t, addr).PTTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("key expiry %v, want the record's KeepUntil (about a minute)", ttl)
	}
	if _, err := s.Update(ctx, "subj-sem", keep(otp.Record{KeepUntil: time.Now().Add(-time.Second)})); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Load(ctx, "subj-sem"); err != nil || found {
		t.Fatalf("a lapsed record is still found: %v %v", found, err)
	}
	if n := raw(t, addr).Exists(ctx, keys[0]).Val(); n != 0 {
		t.Error("a lapsed record's key is still in Redis")
	}
}

// With Redis gone, the store fails closed with otp.ErrUnavailable.
func TestOTPStoreUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.Addr, redistest.Prefix()).OTPStore()
	srv.Stop()
	ctx := context.Background()
	if _, _, err := s.Load(ctx, "subj"); !errors.Is(err, otp.ErrUnavailable) {
		t.Errorf("Load with Redis down: %v", err)
	}
	_, err := s.Update(ctx, "subj", func(cur otp.Record, _ bool) (otp.Record, error) { return cur, nil })
	if !errors.Is(err, otp.ErrUnavailable) {
		t.Errorf("Update with Redis down: %v", err)
	}
}
