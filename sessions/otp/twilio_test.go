package otp_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions/otp"
)

func TestTwilioSend(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	msg := otp.Message{To: "+14155550100", Channel: otp.ChannelSMS, Code: "739184", ExpiresAt: now.Add(5 * time.Minute),
		Call: "CA123", Locale: "en-US"}
	const sid = "AC00000000000000000000000000000001"
	type reply struct {
		status int
		body   string
	}
	created := reply{201, `{"sid":"SM1","status":"queued"}`}
	for _, tc := range []struct {
		name      string
		cfg       otp.TwilioConfig
		locale    string
		replies   []reply
		attempts  int
		user      string
		pass      string
		form      url.Values
		err       string
		twilioErr int
	}{
		{name: "from number, auth token", cfg: otp.TwilioConfig{AuthToken: "tok-secret-1", From: "+15005550006"},
			replies: []reply{created}, attempts: 1, user: sid, pass: "tok-secret-1",
			form: url.Values{"To": {"+14155550100"}, "From": {"+15005550006"},
				"Body": {"Your Callproof verification code is 739184. It expires in 5 minutes. Do not share it with anyone."}}},
		{name: "messaging service, api key, spanish", cfg: otp.TwilioConfig{APIKeySID: "SK1", APIKeySecret: "key-secret-1", MessagingServiceSID: "MG1", Brand: "Acme"},
			locale: "es-US", replies: []reply{created}, attempts: 1, user: "SK1", pass: "key-secret-1",
			form: url.Values{"To": {"+14155550100"}, "MessagingServiceSid": {"MG1"},
				"Body": {"Su código de verificación de Acme es 739184. Vence en 5 minutos. No lo comparta con nadie."}}},
		{name: "invalid number", cfg: otp.TwilioConfig{AuthToken: "tok-secret-1", From: "+15005550006"},
			replies:  []reply{{400, `{"code":21211,"message":"The 'To' number +14155550100 is not valid (code 739184).","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`}},
			attempts: 1, err: "HTTP 400, error 21211 (invalid 'To' number)", twilioErr: 21211},
		{name: "bad credentials", cfg: otp.TwilioConfig{AuthToken: "tok-secret-1", From: "+15005550006"},
			replies: []reply{{401, `{"code":20003,"message":"Authenticate","status":401}`}}, attempts: 1, err: "error 20003", twilioErr: 20003},
		{name: "503 then created", cfg: otp.TwilioConfig{AuthToken: "tok-secret-1", From: "+15005550006"},
			replies: []reply{{503, ""}, created}, attempts: 2},
		{name: "500 is not retried", cfg: otp.TwilioConfig{AuthToken: "tok-secret-1", From: "+15005550006"},
			replies: []reply{{500, `{"message":"739184"}`}}, attempts: 1, err: "twilio: HTTP 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var n int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				rep := tc.replies[min(n, len(tc.replies)-1)]
				n++
				mu.Unlock()
				if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+sid+"/Messages.json" ||
					r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
					t.Errorf("request %s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
				}
				if tc.user != "" {
					u, p, ok := r.BasicAuth()
					if !ok || u != tc.user || p != tc.pass {
						t.Errorf("basic auth %q %q", u, p)
					}
				}
				body, _ := io.ReadAll(r.Body)
				form, _ := url.ParseQuery(string(body))
				if tc.form != nil && form.Encode() != tc.form.Encode() {
					t.Errorf("form\n got %v\nwant %v", form, tc.form)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(rep.status)
				_, _ = io.WriteString(w, rep.body)
			}))
			defer srv.Close()
			cfg := tc.cfg
			cfg.AccountSID, cfg.BaseURL = sid, srv.URL+"/"
			log, logs := observed(t)
			tw, err := otp.NewTwilio(cfg, otp.WithSenderClock(func() time.Time { return now }), otp.WithSenderLogger(log))
			if err != nil {
				t.Fatal(err)
			}
			defer tw.CloseIdleConnections()
			m := msg
			if tc.locale != "" {
				m.Locale = tc.locale
			}
			err = tw.Send(t.Context(), m)
			if n != tc.attempts {
				t.Fatalf("%d attempts, want %d", n, tc.attempts)
			}
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, otp.ErrDelivery)) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
			var te *otp.TwilioError
			if tc.twilioErr != 0 && (!errors.As(err, &te) || te.Code != tc.twilioErr) {
				t.Fatalf("twilio error %v", err)
			}
			assertNoSecret(t, logs, []error{err}, "739184", "4155550100", "tok-secret-1", "key-secret-1")
		})
	}
}

func TestTwilioConfigValidate(t *testing.T) {
	base := otp.TwilioConfig{AccountSID: "AC1", AuthToken: "t", From: "+15005550006"}
	for _, tc := range []struct {
		name string
		edit func(*otp.TwilioConfig)
		ok   bool
	}{
		{"auth token and from", func(*otp.TwilioConfig) {}, true},
		{"api key", func(c *otp.TwilioConfig) { c.AuthToken, c.APIKeySID, c.APIKeySecret = "", "SK1", "s" }, true},
		{"api key without secret", func(c *otp.TwilioConfig) { c.AuthToken, c.APIKeySID = "", "SK1" }, false},
		{"no credentials", func(c *otp.TwilioConfig) { c.AuthToken = "" }, false},
		{"no sender", func(c *otp.TwilioConfig) { c.From = "" }, false},
		{"two senders", func(c *otp.TwilioConfig) { c.MessagingServiceSID = "MG1" }, false},
		{"bad account", func(c *otp.TwilioConfig) { c.AccountSID = "AC1/../x" }, false},
		{"http base url", func(c *otp.TwilioConfig) { c.BaseURL = "http://api.example.com" }, false},
		{"channel other than sms", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			if tc.edit == nil {
				tw, err := otp.NewTwilio(c)
				if err != nil {
					t.Fatal(err)
				}
				if err := tw.Send(t.Context(), otp.Message{Channel: otp.ChannelEmail, To: "a@example.com"}); !errors.Is(err, otp.ErrDelivery) {
					t.Fatalf("email through twilio: %v", err)
				}
				return
			}
			tc.edit(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
