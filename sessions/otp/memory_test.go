package otp_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callproof/callproof/sessions/otp"
)

func TestMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := otp.NewMemory(otp.WithMaxRecords(2))
		ctx := t.Context()
		put := func(subject string, keep time.Duration) error {
			_, err := m.Update(ctx, subject, func(cur otp.Record, found bool) (otp.Record, error) {
				cur.Sends++
				cur.MAC = []byte{1, 2, 3}
				cur.KeepUntil = time.Now().Add(keep)
				return cur, nil
			})
			return err
		}
		if err := put("a", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := put("b", time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := put("c", time.Hour); !errors.Is(err, otp.ErrFull) || !errors.Is(err, otp.ErrUnavailable) {
			t.Fatalf("third subject: %v", err)
		}
		if err := put("a", time.Minute); err != nil { // existing subjects still update
			t.Fatal(err)
		}
		r, ok, err := m.Load(ctx, "a")
		if err != nil || !ok || r.Sends != 2 {
			t.Fatalf("load: %+v %v %v", r, ok, err)
		}
		r.MAC[0] = 9 // the caller's copy is its own
		if r2, _, _ := m.Load(ctx, "a"); r2.MAC[0] != 1 {
			t.Fatal("Load shares the stored MAC")
		}

		time.Sleep(time.Minute) // a lapses, making room
		if _, ok, _ := m.Load(ctx, "a"); ok {
			t.Fatal("lapsed record still loads")
		}
		if err := put("c", time.Hour); err != nil {
			t.Fatal(err)
		}

		// fn errors write nothing; a KeepUntil not in the future deletes.
		boom := errors.New("boom")
		if _, err := m.Update(ctx, "b", func(otp.Record, bool) (otp.Record, error) { return otp.Record{Sends: 99}, boom }); err != boom {
			t.Fatalf("fn error: %v", err)
		}
		if r, _, _ := m.Load(ctx, "b"); r.Sends != 1 {
			t.Fatalf("fn error wrote %+v", r)
		}
		if _, err := m.Update(ctx, "b", func(cur otp.Record, _ bool) (otp.Record, error) { cur.KeepUntil = time.Time{}; return cur, nil }); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := m.Load(ctx, "b"); ok || m.Len() != 1 {
			t.Fatalf("delete: ok %v len %d", ok, m.Len())
		}

		if _, _, err := m.Load(ctx, ""); !errors.Is(err, otp.ErrBadSubject) {
			t.Fatalf("empty subject: %v", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := m.Update(cctx, "x", nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled: %v", err)
		}
	})
}
