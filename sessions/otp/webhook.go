package otp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Webhook request headers (DESIGN.md, "OTP delivery webhook").
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
	SignatureHeader = "Callproof-Signature"
	// DeliveryHeader carries a random id that stays the same across the retries of one
	// message, so that a receiver can drop duplicates.
	DeliveryHeader = "Callproof-Delivery"
)

// Webhook defaults.
const (
	DefaultWebhookTimeout     = 5 * time.Second
	DefaultWebhookMaxAttempts = 3
	DefaultWebhookBackoff     = 500 * time.Millisecond
	// DefaultSignatureTolerance is VerifyWebhookSignature's tolerance when given 0.
	DefaultSignatureTolerance = 5 * time.Minute

	maxWebhookAttempts = 10
	maxWebhookBackoff  = 5 * time.Second
)

// WebhookConfig configures the OTP delivery webhook.
type WebhookConfig struct {
	// URL receives the POST. https, or http to a loopback host (or anywhere with AllowHTTP).
	URL string
	// Secret keys the signature; at least 16 bytes. Required.
	Secret []byte
	// Timeout bounds each attempt. Default 5 s.
	Timeout time.Duration
	// MaxAttempts bounds the attempts per message (1 to 10); network errors, 429 and 5xx are
	// retried, any other status is final. Default 3.
	MaxAttempts int
	// Backoff is the wait before the second attempt, doubled before each further one and
	// capped at 5 s; a Retry-After in seconds replaces it (within the cap). Default 500 ms.
	Backoff time.Duration
	// AllowHTTP permits a plain http URL to a host that is not loopback. The code then
	// crosses the network in clear: only for a receiver on a trusted link.
	AllowHTTP bool
}

func (c WebhookConfig) withDefaults() WebhookConfig {
	if c.Timeout == 0 {
		c.Timeout = DefaultWebhookTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultWebhookMaxAttempts
	}
	if c.Backoff == 0 {
		c.Backoff = DefaultWebhookBackoff
	}
	return c
}

// Validate checks the URL, secret and bounds (after defaults). Messages never contain the
// URL or the secret.
func (c WebhookConfig) Validate() error {
	c = c.withDefaults()
	if _, err := checkURL("webhook url", c.URL, c.AllowHTTP); err != nil {
		return err
	}
	switch {
	case len(c.Secret) < MinHMACKey:
		return fmt.Errorf("%w: webhook secret is %d bytes: want at least %d", ErrInvalidConfig, len(c.Secret), MinHMACKey)
	case c.Timeout < 0:
		return fmt.Errorf("%w: webhook timeout %v: want more than 0", ErrInvalidConfig, c.Timeout)
	case c.MaxAttempts < 1 || c.MaxAttempts > maxWebhookAttempts:
		return fmt.Errorf("%w: webhook max attempts %d: want 1 to %d", ErrInvalidConfig, c.MaxAttempts, maxWebhookAttempts)
	case c.Backoff < 0:
		return fmt.Errorf("%w: webhook backoff %v: want 0 or more", ErrInvalidConfig, c.Backoff)
	}
	return nil
}

// Webhook delivers messages by a signed POST (DESIGN.md, "OTP delivery webhook"):
//
//	POST <URL>
//	Content-Type: application/json
//	Callproof-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//	Callproof-Delivery: <id, the same on every retry of one message>
//
//	{"to":"+14155550100","channel":"sms","code":"123456","expires_at":"2026-01-02T15:04:05Z",
//	 "call":"CA...","locale":"en-US"}
//
// expires_at is RFC 3339 in UTC, to the second. Any 2xx is success. Each attempt is signed
// afresh. Receivers check with VerifyWebhookSignature.
type Webhook struct {
	cfg    WebhookConfig
	client *http.Client
	opts   senderOptions
	retry  retryPolicy
}

var _ Sender = (*Webhook)(nil)

// NewWebhook returns a webhook sender.
func NewWebhook(cfg WebhookConfig, opts ...SenderOption) (*Webhook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Secret = bytes.Clone(cfg.Secret)
	o := applySenderOptions(opts)
	return &Webhook{cfg: cfg, client: httpClient(o.client), opts: o,
		retry: retryPolicy{attempts: cfg.MaxAttempts, backoff: cfg.Backoff, cap: maxWebhookBackoff, timeout: cfg.Timeout}}, nil
}

// webhookBody is the JSON body; field order is the documented one.
type webhookBody struct {
	To        string `json:"to"`
	Channel   string `json:"channel"`
	Code      string `json:"code"`
	ExpiresAt string `json:"expires_at"`
	Call      string `json:"call"`
	Locale    string `json:"locale"`
}

// WebhookBody returns the JSON body the webhook posts for m.
func WebhookBody(m Message) ([]byte, error) {
	return json.Marshal(webhookBody{To: m.To, Channel: m.Channel, Code: m.Code.Reveal(),
		ExpiresAt: m.ExpiresAt.UTC().Truncate(time.Second).Format(time.RFC3339), Call: m.Call, Locale: m.Locale})
}

// Send implements Sender.
func (w *Webhook) Send(ctx context.Context, m Message) error {
	body, err := WebhookBody(m)
	if err != nil {
		return fmt.Errorf("%w: webhook: encode body", ErrDelivery)
	}
	id := newID()
	resp, err := w.retry.do(ctx, w.client, w.opts.log, "webhook", func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("%w: webhook: build request", ErrDelivery)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "callproof-otp")
		req.Header.Set(SignatureHeader, WebhookSignature(w.cfg.Secret, w.opts.now(), body))
		req.Header.Set(DeliveryHeader, id)
		return req, nil
	}, func(status int) bool { return status == http.StatusTooManyRequests || status >= 500 })
	if err != nil {
		return scrub(err, m.Code)
	}
	drain(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%w: webhook: HTTP %d", ErrDelivery, resp.StatusCode)
	}
	w.opts.log.Debug("otp: webhook delivered", zap.Object("message", m), zap.String("delivery", id))
	return nil
}

// CloseIdleConnections closes the sender's idle keep-alive connections (on shutdown).
func (w *Webhook) CloseIdleConnections() { w.client.CloseIdleConnections() }

// WebhookSignature returns the Callproof-Signature value for body signed at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func WebhookSignature(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(signature(secret, ts, body))
}

func signature(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifyWebhookSignature checks a Callproof-Signature header value against the raw request
// body, for receivers of the OTP webhook. The header is a comma-separated list of key=value
// pairs: exactly one t (unix seconds) and one or more v1 (hex HMAC-SHA256 of "<t>.<body>";
// several during a secret rotation); unknown keys are ignored. t must be within tolerance of
// now either way (0 means DefaultSignatureTolerance), which bounds replays; receivers that
// must not act twice also remember the Callproof-Delivery id. MACs are compared in constant
// time. Every rejection wraps ErrSignature.
func VerifyWebhookSignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return fmt.Errorf("%w: no secret configured", ErrSignature)
	}
	if tolerance <= 0 {
		tolerance = DefaultSignatureTolerance
	}
	var ts string
	var sigs [][]byte
	if len(header) > 4096 {
		return fmt.Errorf("%w: header too long", ErrSignature)
	}
	for item := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return fmt.Errorf("%w: malformed header", ErrSignature)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: more than one timestamp", ErrSignature)
			}
			if v == "" {
				return fmt.Errorf("%w: empty timestamp", ErrSignature)
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: malformed v1 signature", ErrSignature)
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" {
		return fmt.Errorf("%w: no timestamp", ErrSignature)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1 signature", ErrSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 || strconv.FormatInt(sec, 10) != ts {
		return fmt.Errorf("%w: malformed timestamp", ErrSignature)
	}
	if skew := now.Sub(time.Unix(sec, 0)).Abs(); skew > tolerance {
		return fmt.Errorf("%w: timestamp is %v away from now, beyond the %v tolerance", ErrSignature, skew.Round(time.Second), tolerance)
	}
	want := signature(secret, ts, body)
	ok := 0
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			ok = 1
		}
	}
	if ok == 0 {
		return fmt.Errorf("%w: no v1 signature matches", ErrSignature)
	}
	return nil
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
