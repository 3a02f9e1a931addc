package otp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Twilio defaults.
const (
	DefaultTwilioBaseURL     = "https://api.twilio.com"
	DefaultTwilioTimeout     = 10 * time.Second
	DefaultTwilioMaxAttempts = 2
	twilioBackoff            = time.Second
)

// TwilioConfig configures SMS delivery through Twilio Programmable Messaging
// (POST /2010-04-01/Accounts/{AccountSid}/Messages.json).
type TwilioConfig struct {
	// AccountSID is the account ("AC..."). Required.
	AccountSID string
	// APIKeySID and APIKeySecret authenticate with an API key ("SK...", revocable; preferred).
	// Otherwise AuthToken (the account's auth token) is used. One of the two is required.
	APIKeySID, APIKeySecret string
	AuthToken               string
	// From is the sending number (E.164), or MessagingServiceSID ("MG...") a Messaging
	// Service that picks it. Exactly one is required.
	From                string
	MessagingServiceSID string
	// BaseURL is the API's origin. Default https://api.twilio.com; tests point it at an
	// httptest server (plain http is accepted for loopback only).
	BaseURL string
	// Timeout bounds each attempt. Default 10 s.
	Timeout time.Duration
	// MaxAttempts bounds the attempts per message (1 to 5). Only 429 and 503 are retried:
	// they mean Twilio created nothing, whereas a retry after a network error or another 5xx
	// could text the code twice. Default 2.
	MaxAttempts int
	// Brand names the service in the SMS text. Default "Callproof".
	Brand string
}

func (c TwilioConfig) withDefaults() TwilioConfig {
	if c.BaseURL == "" {
		c.BaseURL = DefaultTwilioBaseURL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTwilioTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultTwilioMaxAttempts
	}
	return c
}

// Validate checks the account, credentials, sender and bounds (after defaults). Messages
// never contain a credential.
func (c TwilioConfig) Validate() error {
	c = c.withDefaults()
	if _, err := checkURL("twilio base url", c.BaseURL, false); err != nil {
		return err
	}
	switch {
	case !strings.HasPrefix(c.AccountSID, "AC") || strings.ContainsAny(c.AccountSID, "/?#% "):
		return fmt.Errorf("%w: twilio account sid: want AC...", ErrInvalidConfig)
	case c.APIKeySID != "" && c.APIKeySecret == "":
		return fmt.Errorf("%w: twilio api key secret is missing", ErrInvalidConfig)
	case c.APIKeySID == "" && c.AuthToken == "":
		return fmt.Errorf("%w: twilio needs an api key (sid and secret) or the auth token", ErrInvalidConfig)
	case (c.From == "") == (c.MessagingServiceSID == ""):
		return fmt.Errorf("%w: twilio needs exactly one of from and messaging service sid", ErrInvalidConfig)
	case c.Timeout < 0:
		return fmt.Errorf("%w: twilio timeout %v: want more than 0", ErrInvalidConfig, c.Timeout)
	case c.MaxAttempts < 1 || c.MaxAttempts > 5:
		return fmt.Errorf("%w: twilio max attempts %d: want 1 to 5", ErrInvalidConfig, c.MaxAttempts)
	}
	return nil
}

// TwilioError is a Twilio API error response. Its text has the HTTP status and Twilio's
// error code only: Twilio's message can quote the destination number, so it is dropped.
// It matches ErrDelivery.
type TwilioError struct {
	Status int // HTTP status
	Code   int // Twilio error code (https://www.twilio.com/docs/errors/<code>); 0 if none
}

func (e *TwilioError) Error() string {
	s := fmt.Sprintf("otp: delivery failed: twilio: HTTP %d", e.Status)
	if e.Code != 0 {
		s += fmt.Sprintf(", error %d", e.Code)
		if h, ok := twilioHints[e.Code]; ok {
			s += " (" + h + ")"
		}
		s += fmt.Sprintf("; see https://www.twilio.com/docs/errors/%d", e.Code)
	}
	return s
}

// Is matches ErrDelivery.
func (e *TwilioError) Is(target error) bool { return target == ErrDelivery }

var twilioHints = map[int]string{
	20003: "authentication failed",
	20429: "too many requests",
	21211: "invalid 'To' number",
	21408: "no permission to send to this region",
	21606: "the 'From' number cannot send SMS",
	21610: "the recipient unsubscribed",
	21612: "cannot route to this number",
	21614: "'To' is not a mobile number",
	30007: "carrier filtered the message",
}

// Twilio delivers SMS messages through Twilio Programmable Messaging.
type Twilio struct {
	cfg      TwilioConfig
	endpoint string
	client   *http.Client
	opts     senderOptions
	retry    retryPolicy
}

var _ Sender = (*Twilio)(nil)

// NewTwilio returns a Twilio SMS sender.
func NewTwilio(cfg TwilioConfig, opts ...SenderOption) (*Twilio, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := applySenderOptions(opts)
	return &Twilio{
		cfg:      cfg,
		endpoint: strings.TrimRight(cfg.BaseURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json",
		client:   httpClient(o.client),
		opts:     o,
		retry:    retryPolicy{attempts: cfg.MaxAttempts, backoff: twilioBackoff, cap: maxWebhookBackoff, timeout: cfg.Timeout},
	}, nil
}

// Send implements Sender for ChannelSMS.
func (t *Twilio) Send(ctx context.Context, m Message) error {
	if m.Channel != ChannelSMS {
		return fmt.Errorf("%w: twilio: channel %q is not sms", ErrDelivery, m.Channel)
	}
	form := url.Values{}
	form.Set("To", m.To)
	if t.cfg.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", t.cfg.MessagingServiceSID)
	} else {
		form.Set("From", t.cfg.From)
	}
	form.Set("Body", SMSText(t.cfg.Brand, m, t.opts.now()))
	body := form.Encode()
	user, pass := t.cfg.AccountSID, t.cfg.AuthToken
	if t.cfg.APIKeySID != "" {
		user, pass = t.cfg.APIKeySID, t.cfg.APIKeySecret
	}
	resp, err := t.retry.do(ctx, t.client, t.opts.log, "twilio", func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, strings.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("%w: twilio: build request", ErrDelivery)
		}
		req.SetBasicAuth(user, pass)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "callproof-otp")
		return req, nil
	}, func(status int) bool {
		return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
	})
	if err != nil {
		return scrub(err, m.Code)
	}
	defer drain(resp)
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		var ok struct {
			SID    string `json:"sid"`
			Status string `json:"status"`
		}
		_ = json.Unmarshal(raw, &ok)
		t.opts.log.Debug("otp: twilio accepted", zap.Object("message", m), zap.String("sid", ok.SID), zap.String("status", ok.Status))
		return nil
	}
	var e struct {
		Code int `json:"code"`
	}
	_ = json.Unmarshal(raw, &e) // the message field is ignored on purpose (see TwilioError)
	return &TwilioError{Status: resp.StatusCode, Code: e.Code}
}

// CloseIdleConnections closes the sender's idle keep-alive connections (on shutdown).
func (t *Twilio) CloseIdleConnections() { t.client.CloseIdleConnections() }
