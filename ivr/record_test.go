package ivr

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/callproof/callproof/kba"
	"github.com/callproof/callproof/media/mediatest"
	"github.com/callproof/callproof/sessions"
)

// fakeRecorder keeps records, and fails for the request types in fail (a store that is down).
type fakeRecorder struct {
	mu   sync.Mutex
	kept []Result
	fail map[kba.Request]bool
}

func (r *fakeRecorder) Record(_ context.Context, res Result) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail[res.Request] {
		return errors.New("audit store unavailable")
	}
	r.kept = append(r.kept, res)
	return nil
}

func runRecorded(t *testing.T, rec *fakeRecorder, params map[string]string, answers map[string]string) (Result, error, *mediatest.Leg, *fakePublisher) {
	t.Helper()
	pub := &fakePublisher{}
	e, err := New(Config{}, &fakePrompts{}, kba.DemoDirectory(), sessions.NewMemory(), &fakeIssuer{}, pub,
		[]byte("0123456789abcdef0123456789abcdef"), WithRecorder(rec))
	if err != nil {
		t.Fatal(err)
	}
	leg := mediatest.NewLeg(startFor(ada(t), params), script(answers))
	res, err := e.Run(context.Background(), leg)
	return res, err, leg, pub
}

// An opt-out is confirmed to the caller only once its record is kept: when it cannot be, the
// caller hears technical_difficulty and the agent is told why.
func TestFlowOptOutConfirmedOnlyOnceRecorded(t *testing.T) {
	c := ada(t)
	rec := &fakeRecorder{fail: map[kba.Request]bool{kba.RequestOptOut: true}}
	res, err, leg, pub := runRecorded(t, rec, map[string]string{"request": "opt_out", "lang": "en-US"}, honest(c))
	if err == nil || res.Outcome != "technical_difficulty" {
		t.Fatalf("result %+v, %v; want technical_difficulty and our error", res, err)
	}
	if slices.Contains(leg.Played(), "opt_out_confirmed") || leg.Played()[len(leg.Played())-1] != "technical_difficulty" {
		t.Fatalf("the caller heard %v", leg.Played())
	}
	if nv := pub.ofType("not_verified"); len(nv) == 0 || nv[len(nv)-1].Reason != "technical_difficulty" {
		t.Fatalf("agent not told why: %+v", nv)
	}

	// With the store back, the opt-out is kept (once) and then confirmed.
	rec = &fakeRecorder{}
	res, err, leg, _ = runRecorded(t, rec, map[string]string{"request": "opt_out", "lang": "en-US"}, honest(c))
	if err != nil || res.Outcome != "opt_out_confirmed" || len(rec.kept) != 1 || rec.kept[0].Outcome != "opt_out_confirmed" {
		t.Fatalf("result %+v, %v, records %+v", res, err, rec.kept)
	}
	if !slices.Equal(leg.Played()[len(leg.Played())-2:], []string{"opt_out_confirmed", "goodbye"}) {
		t.Fatalf("the caller heard %v", leg.Played())
	}
}

// The opt-out offered after a failed deletion is a request of its own, kept before it is
// confirmed.
func TestFlowOfferedOptOutConfirmedOnlyOnceRecorded(t *testing.T) {
	c := ada(t)
	a := honest(c)
	a["ask_dob"] = "01011990"
	a["offer_opt_out"] = "1"
	params := map[string]string{"request": "delete", "lang": "en-US"}

	rec := &fakeRecorder{fail: map[kba.Request]bool{kba.RequestOptOut: true}}
	res, _, leg, _ := runRecorded(t, rec, params, a)
	if res.OptOut || slices.Contains(leg.Played(), "opt_out_confirmed") || leg.Played()[len(leg.Played())-1] != "technical_difficulty" {
		t.Fatalf("result %+v; the caller heard %v", res, leg.Played())
	}
	if len(rec.kept) != 1 || rec.kept[0].Request != kba.RequestDelete || rec.kept[0].OptOut {
		t.Fatalf("records %+v, want the deletion only", rec.kept)
	}

	rec = &fakeRecorder{}
	res, err, leg, _ := runRecorded(t, rec, params, a)
	if err != nil || !res.OptOut || leg.Played()[len(leg.Played())-2] != "opt_out_confirmed" {
		t.Fatalf("result %+v, %v; the caller heard %v", res, err, leg.Played())
	}
	var kinds []kba.Request
	for _, r := range rec.kept {
		kinds = append(kinds, r.Request)
	}
	if len(rec.kept) != 2 || !slices.Contains(kinds, kba.RequestOptOut) || !slices.Contains(kinds, kba.RequestDelete) ||
		rec.kept[0].RequestID == rec.kept[1].RequestID {
		t.Fatalf("records %+v, want the deletion and the opt-out, each with its own id", rec.kept)
	}
}
