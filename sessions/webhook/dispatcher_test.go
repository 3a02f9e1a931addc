package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

const testSecret = "whsec_0123456789abcdef"

const testToken = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJjdXNfYWRhIn0.c2lnbmF0dXJl"

func testEvent() Event {
	return Event{ID: "jti_7f3a9c", Call: "CA0123456789abcdef0123456789abcdef", Outcome: "verified",
		Level: "reasonable", Request: "know_categories", AMR: []string{"kba"}, Token: testToken}
}

// received is one request a receiver saw.
type received struct {
	header http.Header
	body   []byte
	t      int64 // the signature's timestamp: the sender's (fake) clock
}

// receiver is a CRM endpoint on a real loopback socket. It runs outside the synctest bubble;
// its replies come from respond, given the 1-based request number and the request.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(n int, r received) (int, http.Header)
}

func newReceiver(t *testing.T, respond func(n int, r received) (int, http.Header)) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := received{header: r.Header.Clone(), body: body}
		if m := regexp.MustCompile(`^t=(\d+),`).FindStringSubmatch(r.Header.Get(SignatureHeader)); m != nil {
			rec.t, _ = strconv.ParseInt(m[1], 10, 64)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, rec)
		n, respond := len(rc.got), rc.respond
		rc.mu.Unlock()
		status, h := http.StatusOK, http.Header(nil)
		if respond != nil {
			status, h = respond(n, rec)
		}
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func always(status int) func(int, received) (int, http.Header) {
	return func(int, received) (int, http.Header) { return status, nil }
}

// testClient talks to the receivers without keep-alive: an idle pooled connection's reader
// sits in a network read, which synctest does not count as blocked, and fake time would stop.
func testClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

func testConfig(urls ...string) Config {
	return Config{URLs: urls, Secret: testSecret, MaxAttempts: 8, BaseBackoff: time.Second, MaxBackoff: time.Minute, Timeout: 5 * time.Second}
}

// start opens a file queue in dir and starts a dispatcher on it; both close at the end of the
// bubble's test.
func start(t *testing.T, cfg Config, dir string, opts ...Option) (*Dispatcher, *FileQueue) {
	t.Helper()
	q, err := OpenFileQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDispatcher(cfg, q, append([]Option{WithHTTPClient(testClient())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(); _ = q.Close() })
	return d, q
}

// waitFor advances fake time until cond holds (at most a fake day).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(24 * time.Hour)
	for {
		synctest.Wait()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after a (fake) day", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func stats(t *testing.T, d *Dispatcher) Stats {
	t.Helper()
	s, err := d.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func delivered(t *testing.T, d *Dispatcher, n uint64) func() bool {
	return func() bool { return stats(t, d).Delivered >= n }
}

// sameDelivery checks every request carries the same idempotency key and body.
func sameDelivery(t *testing.T, reqs []received, key string) {
	t.Helper()
	for i, r := range reqs {
		if got := r.header.Get(IdempotencyHeader); got != key {
			t.Errorf("request %d: Idempotency-Key %q, want %q", i+1, got, key)
		}
		if !bytes.Equal(r.body, reqs[0].body) {
			t.Errorf("request %d: body differs from the first", i+1)
		}
		if err := VerifySignature([]byte(testSecret), r.header.Get(SignatureHeader), r.body, time.Unix(r.t, 0), 0); err != nil {
			t.Errorf("request %d: %v", i+1, err)
		}
	}
}

func TestSignatureExactAndVerifiable(t *testing.T) {
	// A known vector, computed independently (Python hmac):
	// HMAC-SHA256("whsec_0123456789abcdef", `1767225600.{"id":"jti_1"}`).
	got := Sign([]byte(testSecret), time.Unix(1767225600, 0), []byte(`{"id":"jti_1"}`))
	if want := "t=1767225600,v1=ad411b1af503c588e4e415f88ef1b8752c548ed4b0714a5d9e175cf6b8348cf8"; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}

	rc := newReceiver(t, nil)
	synctest.Test(t, func(t *testing.T) {
		d, _ := start(t, testConfig(rc.srv.URL+"/crm/hook?tenant=7"), t.TempDir())
		ev := testEvent()
		ev.At = time.Date(2026, 1, 2, 15, 4, 5, 0, time.FixedZone("PST", -8*3600))
		sentAt := time.Now()
		if err := d.Send(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "delivery", delivered(t, d, 1))
		reqs := rc.requests()
		if len(reqs) != 1 {
			t.Fatalf("%d requests, want 1", len(reqs))
		}
		r := reqs[0]
		wantBody := `{"type":"verification.completed","id":"jti_7f3a9c","call":"CA0123456789abcdef0123456789abcdef",` +
			`"outcome":"verified","level":"reasonable","request":"know_categories","amr":["kba"],"token":"` + testToken +
			`","at":"2026-01-02T23:04:05Z"}`
		if string(r.body) != wantBody {
			t.Errorf("body:\n got %s\nwant %s", r.body, wantBody)
		}
		sig := r.header.Get(SignatureHeader)
		m := regexp.MustCompile(`^t=(\d+),v1=([0-9a-f]{64})$`).FindStringSubmatch(sig)
		if m == nil {
			t.Fatalf("signature header %q", sig)
		}
		if m[1] != strconv.FormatInt(sentAt.Unix(), 10) {
			t.Errorf("t=%s, want the sender's clock %d", m[1], sentAt.Unix())
		}
		h := hmac.New(sha256.New, []byte(testSecret))
		h.Write([]byte(m[1] + "." + string(r.body)))
		if m[2] != hex.EncodeToString(h.Sum(nil)) {
			t.Error("v1 is not HMAC-SHA256(secret, t.body)")
		}
		for k, want := range map[string]string{IdempotencyHeader: ev.ID, "Content-Type": "application/json", "User-Agent": "callproof-webhook"} {
			if got := r.header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		now := time.Unix(r.t, 0)
		if err := VerifySignature([]byte(testSecret), sig, r.body, now, 0); err != nil {
			t.Errorf("VerifySignature: %v", err)
		}
		for name, err := range map[string]error{
			"wrong secret":  VerifySignature([]byte("whsec_another_secret_x"), sig, r.body, now, 0),
			"changed body":  VerifySignature([]byte(testSecret), sig, bytes.Replace(r.body, []byte("reasonable"), []byte("reasonably-high"), 1), now, 0),
			"replayed late": VerifySignature([]byte(testSecret), sig, r.body, now.Add(6*time.Minute), 0),
			"no v1":         VerifySignature([]byte(testSecret), "t="+m[1], r.body, now, 0),
			"two t":         VerifySignature([]byte(testSecret), "t=1,"+sig, r.body, now, 0),
			"short v1":      VerifySignature([]byte(testSecret), "t="+m[1]+",v1=abcd", r.body, now, 0),
			"signed t+1":    VerifySignature([]byte(testSecret), strings.Replace(sig, "t="+m[1], "t="+strconv.FormatInt(r.t+1, 10), 1), r.body, now, 0),
		} {
			if !errors.Is(err, ErrSignature) {
				t.Errorf("%s: VerifySignature = %v, want ErrSignature", name, err)
			}
		}
		// A rotation: the old and the new secret's signatures side by side.
		both := sig + ",v1=" + strings.Repeat("0", 64)
		if err := VerifySignature([]byte(testSecret), both, r.body, now, 0); err != nil {
			t.Errorf("two v1: %v", err)
		}
	})
}

func TestRetryOn503ThenSuccess(t *testing.T) {
	rc := newReceiver(t, func(n int, _ received) (int, http.Header) {
		if n == 1 {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusNoContent, nil
	})
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(rc.srv.URL)
		cfg.BaseBackoff = 2 * time.Second
		d, q := start(t, cfg, t.TempDir())
		if err := d.Send(context.Background(), testEvent()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "delivery", delivered(t, d, 1))
		reqs := rc.requests()
		if len(reqs) != 2 {
			t.Fatalf("%d requests, want 2", len(reqs))
		}
		sameDelivery(t, reqs, "jti_7f3a9c")
		if gap := reqs[1].t - reqs[0].t; gap < 0 || gap > 2 {
			t.Errorf("retried after %d s, want within the first back-off [0, 2 s]", gap)
		}
		s := stats(t, d)
		if s.Attempts != 2 || s.Retries != 1 || s.Delivered != 1 || s.DeadLettered != 0 || s.Enqueued != 1 {
			t.Errorf("stats %+v", s)
		}
		if s.Queue != (QueueStats{Delivered: 1}) {
			t.Errorf("queue %+v, want empty with 1 delivered", s.Queue)
		}
		if dead, _ := q.DeadLetters(context.Background()); len(dead) != 0 {
			t.Errorf("dead letters %v", dead)
		}
	})
}

func TestRetryAfterRespected(t *testing.T) {
	rc := newReceiver(t, func(n int, r received) (int, http.Header) {
		switch n {
		case 1:
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"30"}}
		case 2: // an HTTP date 90 s after the sender's clock
			return http.StatusServiceUnavailable, http.Header{"Retry-After": {time.Unix(r.t+90, 0).UTC().Format(http.TimeFormat)}}
		}
		return http.StatusOK, nil
	})
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(rc.srv.URL)
		cfg.BaseBackoff, cfg.MaxBackoff = time.Second, time.Second // jitter alone would retry within 1 s
		d, _ := start(t, cfg, t.TempDir())
		if err := d.Send(context.Background(), testEvent()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "delivery", delivered(t, d, 1))
		reqs := rc.requests()
		if len(reqs) != 3 {
			t.Fatalf("%d requests, want 3", len(reqs))
		}
		sameDelivery(t, reqs, "jti_7f3a9c")
		if gap := reqs[1].t - reqs[0].t; gap < 30 || gap > 31 {
			t.Errorf("after Retry-After: 30, retried after %d s", gap)
		}
		if gap := reqs[2].t - reqs[1].t; gap < 90 || gap > 91 {
			t.Errorf("after a Retry-After date 90 s on, retried after %d s", gap)
		}
	})
}

func TestDeadLetterAfterMaxAttempts(t *testing.T) {
	rc := newReceiver(t, always(http.StatusInternalServerError))
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(rc.srv.URL)
		cfg.MaxAttempts, cfg.BaseBackoff, cfg.MaxBackoff = 4, time.Second, 4*time.Second
		d, q := start(t, cfg, t.TempDir())
		began := time.Now()
		if err := d.Send(context.Background(), testEvent()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "dead letter", func() bool { return stats(t, d).DeadLettered == 1 })
		// Back-offs are drawn from [0,1], [0,2], [0,4] s.
		if took := time.Since(began); took > 7*time.Second+time.Second/2 { // plus waitFor's 100 ms steps
			t.Errorf("4 attempts took %v, more than the back-off bounds allow", took)
		}
		time.Sleep(time.Hour) // and nothing more is sent
		synctest.Wait()
		reqs := rc.requests()
		if len(reqs) != 4 {
			t.Fatalf("%d requests, want 4", len(reqs))
		}
		sameDelivery(t, reqs, "jti_7f3a9c")
		s := stats(t, d)
		if s.Attempts != 4 || s.Retries != 3 || s.Delivered != 0 || s.Queue != (QueueStats{Dead: 1}) {
			t.Errorf("stats %+v", s)
		}
		dead, _ := q.DeadLetters(context.Background())
		if len(dead) != 1 || dead[0].Attempts != 4 || dead[0].LastError != "HTTP 500" || dead[0].Key != "jti_7f3a9c" || dead[0].Body != nil {
			t.Fatalf("dead letters %+v", dead)
		}
		// An operator requeues it once the CRM is fixed.
		rc.mu.Lock()
		rc.respond = always(http.StatusOK)
		rc.mu.Unlock()
		if err := q.Requeue(context.Background(), dead[0].ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		d.wake()
		waitFor(t, "delivery after requeue", delivered(t, d, 1))
	})
}

func TestFinalStatusesAreNotRetried(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusFound} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			rc := newReceiver(t, func(int, received) (int, http.Header) {
				return status, http.Header{"Location": {"http://127.0.0.1:1/elsewhere"}}
			})
			synctest.Test(t, func(t *testing.T) {
				d, q := start(t, testConfig(rc.srv.URL), t.TempDir())
				if err := d.Send(context.Background(), testEvent()); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "dead letter", func() bool { return stats(t, d).DeadLettered == 1 })
				if n := len(rc.requests()); n != 1 {
					t.Fatalf("%d requests, want 1 (no retry, no redirect)", n)
				}
				dead, _ := q.DeadLetters(context.Background())
				if len(dead) != 1 || dead[0].LastError != "HTTP "+strconv.Itoa(status) {
					t.Fatalf("dead letters %+v", dead)
				}
			})
		})
	}
}

func TestNetworkErrorsAreRetried(t *testing.T) {
	rc := newReceiver(t, nil)
	url := rc.srv.URL
	rc.srv.Close() // nothing listens there any more
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(url)
		cfg.MaxAttempts = 2
		d, q := start(t, cfg, t.TempDir())
		if err := d.Send(context.Background(), testEvent()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "dead letter", func() bool { return stats(t, d).DeadLettered == 1 })
		dead, _ := q.DeadLetters(context.Background())
		if len(dead) != 1 || dead[0].LastError != "connection refused" || dead[0].Attempts != 2 {
			t.Fatalf("dead letters %+v", dead)
		}
	})
}

func TestRestartResumesPendingDelivery(t *testing.T) {
	rc := newReceiver(t, func(n int, _ received) (int, http.Header) {
		if n == 1 {
			return http.StatusBadGateway, nil
		}
		return http.StatusOK, nil
	})
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(rc.srv.URL)
		cfg.BaseBackoff = 10 * time.Second

		// First process: one event fails once and waits for its retry; a second is queued
		// while no dispatcher runs.
		q1, err := OpenFileQueue(dir)
		if err != nil {
			t.Fatal(err)
		}
		d1, _ := NewDispatcher(cfg, q1, WithHTTPClient(testClient()))
		if err := d1.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := d1.Send(context.Background(), testEvent()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "first failure", func() bool { return stats(t, d1).Retries == 1 })
		_ = d1.Close()
		second := testEvent()
		second.ID = "jti_second"
		if err := d1.Send(context.Background(), second); !errors.Is(err, ErrClosed) {
			t.Fatalf("Send after Close = %v", err)
		}
		d0, _ := NewDispatcher(cfg, q1, WithHTTPClient(testClient())) // never started
		if err := d0.Send(context.Background(), second); err != nil {
			t.Fatal(err)
		}
		if err := q1.Close(); err != nil {
			t.Fatal(err)
		}

		// Second process.
		q2, err := OpenFileQueue(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer q2.Close()
		if qs, _ := q2.Stats(context.Background()); qs.Retrying != 1 || qs.Pending != 1 {
			t.Fatalf("reopened queue %+v, want 1 retrying and 1 pending", qs)
		}
		d2, _ := NewDispatcher(cfg, q2, WithHTTPClient(testClient()))
		if err := d2.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer d2.Close()
		waitFor(t, "both deliveries", delivered(t, d2, 2))
		reqs := rc.requests()
		if len(reqs) != 3 {
			t.Fatalf("%d requests, want 3", len(reqs))
		}
		var first []received
		for _, r := range reqs {
			if r.header.Get(IdempotencyHeader) == "jti_7f3a9c" {
				first = append(first, r)
			}
		}
		if len(first) != 2 {
			t.Fatalf("%d requests for the first event, want 2", len(first))
		}
		sameDelivery(t, first, "jti_7f3a9c")
		if qs, _ := q2.Stats(context.Background()); qs != (QueueStats{Delivered: 2}) {
			t.Fatalf("queue %+v", qs)
		}
	})
}

func TestFanOutToEveryURL(t *testing.T) {
	a, b := newReceiver(t, nil), newReceiver(t, always(http.StatusServiceUnavailable))
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(a.srv.URL, b.srv.URL)
		cfg.MaxAttempts = 2
		d, _ := start(t, cfg, t.TempDir())
		if err := d.Send(context.Background(), testEvent()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "both outcomes", func() bool { s := stats(t, d); return s.Delivered == 1 && s.DeadLettered == 1 })
		if len(a.requests()) != 1 || len(b.requests()) != 2 {
			t.Fatalf("a got %d, b got %d", len(a.requests()), len(b.requests()))
		}
		sameDelivery(t, append(a.requests(), b.requests()...), "jti_7f3a9c")
	})
}

func TestSealedQueueHoldsNoToken(t *testing.T) {
	rc := newReceiver(t, nil)
	key := bytes.Repeat([]byte{7}, 32)
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		q, err := OpenFileQueue(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		d, err := NewDispatcher(testConfig(rc.srv.URL), q, WithHTTPClient(testClient()), WithSealKey(key))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Send(context.Background(), testEvent()); err != nil {
			t.Fatal(err)
		}
		journal, _ := os.ReadFile(filepath.Join(dir, QueueFileName))
		for _, clear := range []string{testToken, "verification.completed", "know_categories"} {
			if bytes.Contains(journal, []byte(clear)) {
				t.Fatalf("the queue file holds %q in clear", clear)
			}
		}
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		waitFor(t, "delivery", delivered(t, d, 1))
		if !bytes.Contains(rc.requests()[0].body, []byte(testToken)) {
			t.Fatal("the receiver did not get the opened body")
		}

		// A dispatcher with another key cannot open what was sealed: dead letter, not garbage.
		// The event is queued by a dispatcher that is not running: queued by the running one,
		// its worker could deliver it before Close (it did once in CI).
		_ = d.Close()
		d1, err := NewDispatcher(testConfig(rc.srv.URL), q, WithHTTPClient(testClient()), WithSealKey(key))
		if err != nil {
			t.Fatal(err)
		}
		if err := d1.Send(context.Background(), Event{ID: "jti_other", Call: "CA1", Outcome: "verified"}); err != nil {
			t.Fatal(err)
		}
		_ = d1.Close()
		d2, _ := NewDispatcher(testConfig(rc.srv.URL), q, WithHTTPClient(testClient()), WithSealKey(bytes.Repeat([]byte{8}, 32)))
		_ = d2.Start(context.Background())
		defer d2.Close()
		waitFor(t, "dead letter", func() bool { return stats(t, d2).DeadLettered == 1 })
		dead, _ := q.DeadLetters(context.Background())
		if len(dead) != 1 || !strings.Contains(dead[0].LastError, "does not open") || len(rc.requests()) != 1 {
			t.Fatalf("dead %+v, %d requests", dead, len(rc.requests()))
		}
	})
}

func TestCloseDuringAttempt(t *testing.T) {
	// Both channels live outside the bubble: waiting on them is not a durable block, so fake
	// time does not run ahead while the request is in flight.
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	rc := newReceiver(t, func(int, received) (int, http.Header) {
		arrived <- struct{}{}
		<-release
		return http.StatusOK, nil
	})
	defer close(release)
	synctest.Test(t, func(t *testing.T) {
		d, q := start(t, testConfig(rc.srv.URL), t.TempDir())
		if err := d.Send(context.Background(), testEvent()); err != nil {
			t.Fatal(err)
		}
		<-arrived
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := d.Start(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Start after Close = %v", err)
		}
		// Cancelled in flight: still queued (leased), to be sent again.
		if qs, _ := q.Stats(context.Background()); qs.Leased != 1 {
			t.Fatalf("queue %+v, want the delivery still queued", qs)
		}
	})
}

func TestSendValidates(t *testing.T) {
	q, err := OpenFileQueue(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	d, err := NewDispatcher(testConfig("https://crm.example.com/hook"), q)
	if err != nil {
		t.Fatal(err)
	}
	for name, ev := range map[string]Event{
		"token as id":  {ID: testToken, Call: "CA1", Outcome: "verified", Token: testToken},
		"no id":        {Call: "CA1", Outcome: "verified", Token: testToken},
		"no call":      {ID: "jti_1", Outcome: "verified", Token: testToken},
		"other type":   {Type: "call.started", ID: "jti_1", Call: "CA1", Outcome: "verified", Token: testToken},
		"huge token":   {ID: "jti_1", Call: "CA1", Outcome: "verified", Token: strings.Repeat("a", maxTokenLen+1)},
		"many methods": {ID: "jti_1", Call: "CA1", Outcome: "verified", AMR: make([]string, 17), Token: testToken},
	} {
		err := d.Send(context.Background(), ev)
		if !errors.Is(err, ErrInvalidEvent) || strings.Contains(err.Error(), testToken) {
			t.Errorf("%s: Send = %v, want ErrInvalidEvent without the token", name, err)
		}
	}
	if s := testEvent().String(); strings.Contains(s, testToken) || !strings.Contains(s, "redacted") {
		t.Errorf("Event.String leaks: %s", s)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start = %v", err)
	}
	_ = d.Close()
}

func TestConfigValidate(t *testing.T) {
	ok := Config{URLs: []string{"https://crm.example.com/hook"}, Secret: testSecret}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"loopback http", func(c *Config) { c.URLs = []string{"http://127.0.0.1:9000/x", "http://localhost/y", "http://[::1]/z"} }, ""},
		{"http with AllowHTTP", func(c *Config) { c.URLs, c.AllowHTTP = []string{"http://crm.internal/x"}, true }, ""},
		{"no URL", func(c *Config) { c.URLs = nil }, "no webhook URL"},
		{"plain http", func(c *Config) { c.URLs = []string{"http://crm.example.com/x"} }, "plain http"},
		{"relative", func(c *Config) { c.URLs = []string{"/hook"} }, "absolute"},
		{"ftp", func(c *Config) { c.URLs = []string{"ftp://crm.example.com/x"} }, "scheme"},
		{"credentials", func(c *Config) { c.URLs = []string{"https://user:hunter2@crm.example.com/x"} }, "credentials"},
		{"twice", func(c *Config) { c.URLs = []string{ok.URLs[0], ok.URLs[0]} }, "twice"},
		{"short secret", func(c *Config) { c.Secret = "hunter2" }, "secret"},
		{"attempts", func(c *Config) { c.MaxAttempts = 101 }, "attempts"},
		{"back-off order", func(c *Config) { c.BaseBackoff, c.MaxBackoff = time.Minute, time.Second }, "back-off"},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, "timeout"},
	} {
		c := ok
		tc.edit(&c)
		err := c.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig about %q", tc.name, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), testSecret)) {
			t.Errorf("%s: error %q leaks a secret", tc.name, err)
		}
	}
	if _, err := NewDispatcher(ok, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewDispatcher without a queue = %v", err)
	}
	q := &FileQueue{}
	for _, o := range []Option{WithWorkers(0), WithPollInterval(0), WithSealKey([]byte("short"))} {
		if _, err := NewDispatcher(ok, q, o); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("bad option: %v", err)
		}
	}
}

func TestBackoffAndRetryAfter(t *testing.T) {
	d := &Dispatcher{cfg: Config{BaseBackoff: time.Second, MaxBackoff: 10 * time.Second}}
	for attempt, ceil := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		var top time.Duration
		for range 2000 {
			w := d.backoff(attempt)
			if w < 0 || w > ceil {
				t.Fatalf("attempt %d: back-off %v outside [0, %v]", attempt, w, ceil)
			}
			top = max(top, w)
		}
		if top < ceil*8/10 {
			t.Errorf("attempt %d: largest of 2000 draws %v, want close to %v (full jitter)", attempt, top, ceil)
		}
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"30":                            30 * time.Second,
		"-5":                            0,
		"soon":                          0,
		"99999999":                      MaxRetryAfter,
		"Thu, 01 Jan 2026 00:02:00 GMT": 2 * time.Minute,
		"Wed, 31 Dec 2025 23:00:00 GMT": 0,
		"Fri, 02 Jan 2026 06:00:00 GMT": MaxRetryAfter,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}
