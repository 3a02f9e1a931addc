package otp_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions/otp"
)

func TestInbox(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var console strings.Builder
	in := otp.NewInbox(2, otp.WithConsole(&console), otp.WithSenderClock(func() time.Time { return now }))
	for i, m := range []otp.Message{
		{To: "+14155550100", Channel: otp.ChannelSMS, Code: "111111", ExpiresAt: now.Add(time.Minute), Call: "CA1"},
		{To: "ada@example.com", Channel: otp.ChannelEmail, Code: "222222", ExpiresAt: now.Add(time.Minute), Call: "CA2"},
		{To: "+14155550111", Channel: otp.ChannelSMS, Code: "333333", ExpiresAt: now.Add(time.Minute), Call: "CA1", Locale: "es-US"},
		{To: "+14155550122", Channel: otp.ChannelSMS, Code: "444444", ExpiresAt: now, Call: "CA3"}, // already expired
	} {
		if err := in.Send(t.Context(), m); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if got := in.Messages(""); len(got) != 1 || got[0].Code != "333333" { // kept 2, one of them expired
		t.Fatalf("messages %+v", got)
	}
	if !strings.Contains(console.String(), "demo inbox: sms code 333333 to ***0111 (call CA1, expires 03:05:05 UTC)") ||
		strings.Contains(console.String(), "4155550111") {
		t.Fatalf("console %q", console.String())
	}

	h := in.InboxHandler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/demo/inbox?call=CA1", nil))
	var body struct {
		Messages []map[string]any `json:"messages"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("GET: %d %s %v", rec.Code, rec.Body, err)
	}
	want := map[string]any{"to": "***0111", "channel": "sms", "code": "333333", "expires_at": "2026-01-02T03:05:05Z",
		"sent_at": "2026-01-02T03:04:05Z", "call": "CA1", "locale": "es-US"}
	if len(body.Messages) != 1 || len(body.Messages[0]) != len(want) {
		t.Fatalf("body %s", rec.Body)
	}
	for k, v := range want {
		if body.Messages[0][k] != v {
			t.Errorf("%s = %v, want %v", k, body.Messages[0][k], v)
		}
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/demo/inbox?call=CA2", nil))
	if !strings.Contains(rec.Body.String(), `"messages":[]`) {
		t.Fatalf("other call: %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/demo/inbox", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}

func TestRouter(t *testing.T) {
	tw, mail, hook := &recorder{}, &recorder{}, &recorder{}
	for _, tc := range []struct {
		name   string
		r      otp.Router
		ch     string
		expect otp.Sender
	}{
		{"sms to twilio", otp.Router{SMS: tw, Email: mail, Fallback: hook}, otp.ChannelSMS, tw},
		{"email to smtp", otp.Router{SMS: tw, Email: mail, Fallback: hook}, otp.ChannelEmail, mail},
		{"sms to webhook", otp.Router{Email: mail, Fallback: hook}, otp.ChannelSMS, hook},
		{"email to webhook", otp.Router{SMS: tw, Fallback: hook}, otp.ChannelEmail, hook},
		{"voice to webhook", otp.Router{SMS: tw, Email: mail, Fallback: hook}, otp.ChannelVoice, hook},
		{"unknown channel", otp.Router{Fallback: hook}, "fax", nil},
		{"nothing", otp.Router{}, otp.ChannelSMS, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.For(tc.ch); got != tc.expect {
				t.Fatalf("For(%q) = %v", tc.ch, got)
			}
		})
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"+14155550100": "***0100", "(415) 555-0100": "***0100", "1234": "****", "": "",
		"ada@example.com": "a***@e***.com", "jo@localhost": "j***@l***", "@x.org": "****@x***.org",
	} {
		if got := otp.Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}
