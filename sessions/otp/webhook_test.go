package otp_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions/otp"
)

var (
	hookSecret = []byte("whsec_0123456789abcdef")
	hookNow    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	hookMsg    = otp.Message{To: "+14155550100", Channel: otp.ChannelSMS, Code: "739184",
		ExpiresAt: hookNow.Add(5*time.Minute + 300*time.Millisecond), Call: "CA123", Locale: "es-US"}
)

type hookRequest struct {
	header http.Header
	body   string
	path   string
}

// hookServer answers with statuses in turn (the last one repeats) and records each request.
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	reqs     []hookRequest
}

func newHookServer(t *testing.T, statuses ...int) *hookServer {
	h := &hookServer{statuses: statuses}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		n := len(h.reqs)
		h.reqs = append(h.reqs, hookRequest{header: r.Header.Clone(), body: string(body), path: r.URL.Path})
		st := h.statuses[min(n, len(h.statuses)-1)]
		h.mu.Unlock()
		if st == http.StatusTemporaryRedirect {
			w.Header().Set("Location", "/elsewhere")
		}
		if st == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(st)
		_, _ = io.WriteString(w, `{"echo":"`+string(body)+`"}`) // a careless receiver echoing the code
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.reqs...)
}

func TestWebhookSend(t *testing.T) {
	const wantBody = `{"to":"+14155550100","channel":"sms","code":"739184","expires_at":"2026-01-02T03:09:05Z","call":"CA123","locale":"es-US"}`
	m := hmac.New(sha256.New, hookSecret)
	m.Write([]byte("1767323045." + wantBody))
	wantSig := "t=1767323045,v1=" + hex.EncodeToString(m.Sum(nil))

	for _, tc := range []struct {
		name     string
		statuses []int
		attempts int
		err      string // substring of the error; "" for success
	}{
		{"signed exactly", []int{200}, 1, ""},
		{"any 2xx", []int{204}, 1, ""},
		{"503 then success", []int{503, 200}, 2, ""},
		{"429 then success", []int{429, 202}, 2, ""},
		{"5xx until attempts run out", []int{500}, 3, "webhook: HTTP 500 (after 3 attempts)"},
		{"4xx is final", []int{400}, 1, "webhook: HTTP 400"},
		{"redirect is not followed", []int{307}, 1, "webhook: HTTP 307"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newHookServer(t, tc.statuses...)
			log, logs := observed(t)
			w, err := otp.NewWebhook(otp.WebhookConfig{URL: srv.URL + "/otp?token=urlsecret", Secret: hookSecret, Backoff: time.Millisecond},
				otp.WithSenderClock(func() time.Time { return hookNow }), otp.WithSenderLogger(log))
			if err != nil {
				t.Fatal(err)
			}
			defer w.CloseIdleConnections()
			err = w.Send(t.Context(), hookMsg)
			reqs := srv.requests()
			if len(reqs) != tc.attempts {
				t.Fatalf("%d attempts, want %d", len(reqs), tc.attempts)
			}
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, otp.ErrDelivery)) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
			for _, r := range reqs {
				if r.body != wantBody {
					t.Errorf("body\n got %s\nwant %s", r.body, wantBody)
				}
				if got := r.header.Get(otp.SignatureHeader); got != wantSig {
					t.Errorf("signature\n got %s\nwant %s", got, wantSig)
				}
				if r.header.Get("Content-Type") != "application/json" || r.path != "/otp" {
					t.Errorf("content type %q path %q", r.header.Get("Content-Type"), r.path)
				}
				if id := r.header.Get(otp.DeliveryHeader); id == "" || id != reqs[0].header.Get(otp.DeliveryHeader) {
					t.Errorf("delivery id %q differs across retries", id)
				}
				if err := otp.VerifyWebhookSignature(hookSecret, r.header.Get(otp.SignatureHeader), []byte(r.body), hookNow, 0); err != nil {
					t.Errorf("receiver rejects it: %v", err)
				}
			}
			if tc.attempts > 1 && logs.FilterMessage("otp: delivery attempt failed; retrying").Len() != tc.attempts-1 {
				t.Errorf("retries not logged")
			}
			assertNoSecret(t, logs, []error{err}, "739184", "urlsecret", "+14155550100")
		})
	}
}

func TestWebhookNetworkErrorAndCancel(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/otp?token=urlsecret"
	srv.Close()
	w, err := otp.NewWebhook(otp.WebhookConfig{URL: url, Secret: hookSecret, Backoff: time.Millisecond, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Send(t.Context(), hookMsg)
	if !errors.Is(err, otp.ErrDelivery) || strings.Contains(err.Error(), "urlsecret") || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Fatalf("closed server: %v", err)
	}

	slow := newHookServer(t, 503)
	w, err = otp.NewWebhook(otp.WebhookConfig{URL: slow.URL, Secret: hookSecret, Backoff: time.Hour, MaxAttempts: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer w.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = w.Send(ctx, hookMsg)
	if !errors.Is(err, otp.ErrDelivery) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 6*time.Second {
		t.Fatalf("cancelled during back-off: %v after %v", err, time.Since(start))
	}
}

func TestWebhookConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  otp.WebhookConfig
		ok   bool
	}{
		{"https", otp.WebhookConfig{URL: "https://hooks.example.com/otp", Secret: hookSecret}, true},
		{"http loopback", otp.WebhookConfig{URL: "http://127.0.0.1:9/otp", Secret: hookSecret}, true},
		{"http localhost", otp.WebhookConfig{URL: "http://localhost:9/otp", Secret: hookSecret}, true},
		{"http remote", otp.WebhookConfig{URL: "http://hooks.example.com/otp", Secret: hookSecret}, false},
		{"http remote allowed", otp.WebhookConfig{URL: "http://relay:8080/otp", Secret: hookSecret, AllowHTTP: true}, true},
		{"credentials in url", otp.WebhookConfig{URL: "https://u:p@hooks.example.com/", Secret: hookSecret}, false},
		{"relative", otp.WebhookConfig{URL: "/otp", Secret: hookSecret}, false},
		{"ftp", otp.WebhookConfig{URL: "ftp://hooks.example.com/", Secret: hookSecret}, false},
		{"short secret", otp.WebhookConfig{URL: "https://hooks.example.com/", Secret: []byte("short")}, false},
		{"attempts", otp.WebhookConfig{URL: "https://hooks.example.com/", Secret: hookSecret, MaxAttempts: 11}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tc.ok)
			}
			if err != nil && (strings.Contains(err.Error(), "u:p") || strings.Contains(err.Error(), "short")) {
				t.Fatalf("error repeats a secret: %v", err)
			}
		})
	}
}

func TestVerifyWebhookSignature(t *testing.T) {
	body := []byte(`{"to":"+14155550100","code":"739184"}`)
	good := otp.WebhookSignature(hookSecret, hookNow, body)
	_, v1, _ := strings.Cut(good, ",v1=")
	other := otp.WebhookSignature([]byte("another-secret-0123"), hookNow, body)
	_, otherV1, _ := strings.Cut(other, ",v1=")
	for _, tc := range []struct {
		name   string
		header string
		body   []byte
		now    time.Time
		ok     bool
	}{
		{"valid", good, body, hookNow, true},
		{"spaces and unknown keys", " t=1767323045 , v0=zz , v1=" + v1 + " ", body, hookNow, true},
		{"rotation: second v1 matches", "t=1767323045,v1=" + otherV1 + ",v1=" + v1, body, hookNow, true},
		{"edge of tolerance", good, body, hookNow.Add(5 * time.Minute), true},
		{"too old", good, body, hookNow.Add(5*time.Minute + time.Second), false},
		{"from the future", good, body, hookNow.Add(-6 * time.Minute), false},
		{"tampered body", good, []byte(`{"to":"+19005550100","code":"739184"}`), hookNow, false},
		{"wrong secret", other, body, hookNow, false},
		{"timestamp changed", "t=1767323046,v1=" + v1, body, hookNow, false},
		{"no timestamp", "v1=" + v1, body, hookNow, false},
		{"two timestamps", "t=1767323045,t=1767323045,v1=" + v1, body, hookNow, false},
		{"signed timestamp", "t=+1767323045,v1=" + v1, body, hookNow, false},
		{"no v1", "t=1767323045", body, hookNow, false},
		{"short v1", "t=1767323045,v1=" + v1[:62], body, hookNow, false},
		{"not hex", "t=1767323045,v1=" + strings.Repeat("g", 64), body, hookNow, false},
		{"empty", "", body, hookNow, false},
		{"no equals", "t1767323045", body, hookNow, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := otp.VerifyWebhookSignature(hookSecret, tc.header, tc.body, tc.now, 0)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, otp.ErrSignature)) {
				t.Fatalf("err %v, want ok %v", err, tc.ok)
			}
		})
	}
	if err := otp.VerifyWebhookSignature(nil, good, body, hookNow, 0); !errors.Is(err, otp.ErrSignature) {
		t.Fatalf("no secret: %v", err)
	}
	if err := otp.VerifyWebhookSignature(hookSecret, good, body, hookNow.Add(time.Hour), 2*time.Hour); err != nil {
		t.Fatalf("wide tolerance: %v", err)
	}
}

func FuzzVerifyWebhookSignature(f *testing.F) {
	body := []byte(`{"code":"739184"}`)
	f.Add(otp.WebhookSignature(hookSecret, hookNow, body), body)
	f.Add("t=1767323045,v1=00", body)
	f.Add("t=,v1=,=,,", []byte{})
	f.Add("t=99999999999999999999,v1="+strings.Repeat("a", 64), body)
	f.Add("t=-1,v1="+strings.Repeat("a", 64), body)
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := otp.VerifyWebhookSignature(hookSecret, header, body, hookNow, time.Minute)
		if err != nil && !errors.Is(err, otp.ErrSignature) {
			t.Fatalf("unwrapped error %v", err)
		}
		if err == nil {
			// Whatever header got in must be bound to this very body.
			if otp.VerifyWebhookSignature(hookSecret, header, append(body, 'x'), hookNow, time.Minute) == nil {
				t.Fatalf("header %q accepted for two bodies", header)
			}
		}
	})
}
