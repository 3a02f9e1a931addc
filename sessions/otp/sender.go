package otp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// SenderOption configures a Webhook, SMTP, Twilio or Inbox sender; each ignores the options
// that do not concern it.
type SenderOption func(*senderOptions)

type senderOptions struct {
	log     *zap.Logger
	now     func() time.Time
	client  *http.Client
	tls     *tls.Config
	console io.Writer
}

func applySenderOptions(opts []SenderOption) senderOptions {
	o := senderOptions{log: zap.NewNop(), now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithSenderLogger sets the sender's logger (nil: zap.NewNop()). Retries are logged at Warn.
func WithSenderLogger(l *zap.Logger) SenderOption {
	return func(o *senderOptions) {
		if l != nil {
			o.log = l
		}
	}
}

// WithSenderClock sets the clock for signature timestamps, Date headers and the "expires in
// N minutes" texts (default time.Now).
func WithSenderClock(now func() time.Time) SenderOption {
	return func(o *senderOptions) {
		if now != nil {
			o.now = now
		}
	}
}

// WithHTTPClient sets the HTTP client of a Webhook or Twilio sender (default: a client of its
// own over a clone of http.DefaultTransport). Redirects are never followed, whatever the
// client says: a redirect would carry the code to an address nobody configured.
func WithHTTPClient(c *http.Client) SenderOption {
	return func(o *senderOptions) {
		if c != nil {
			o.client = c
		}
	}
}

// WithTLSConfig sets the TLS configuration of the SMTP sender (STARTTLS or implicit TLS), for
// example a private RootCAs pool. ServerName defaults to the host of SMTPConfig.Addr.
func WithTLSConfig(c *tls.Config) SenderOption {
	return func(o *senderOptions) {
		if c != nil {
			o.tls = c
		}
	}
}

// WithConsole makes an Inbox write one line per message, code included, to w: the demo's
// console. Never use it outside the demo.
func WithConsole(w io.Writer) SenderOption {
	return func(o *senderOptions) { o.console = w }
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// httpClient returns a copy of c (or a new client) that never follows redirects.
func httpClient(c *http.Client) *http.Client {
	if c == nil {
		return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), CheckRedirect: noRedirect}
	}
	cp := *c
	cp.CheckRedirect = noRedirect
	return &cp
}

// checkURL accepts an absolute http(s) URL; plain http only to a loopback host unless
// allowHTTP. Messages name the problem, never the URL (it may carry a token).
func checkURL(field, raw string, allowHTTP bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("%w: %s: want an absolute http(s) URL", ErrInvalidConfig, field)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: %s: credentials in the URL are not allowed", ErrInvalidConfig, field)
	}
	if u.Scheme == "http" && !allowHTTP && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("%w: %s: plain http carries the code in clear; use https (or allow http explicitly)", ErrInvalidConfig, field)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// retryPolicy is the bounded exponential back-off shared by the HTTP senders.
type retryPolicy struct {
	attempts int           // total attempts, at least 1
	backoff  time.Duration // before the second attempt; doubled each time
	cap      time.Duration // longest single wait
	timeout  time.Duration // per attempt
}

// wait returns the pause before attempt n+1 (n >= 1), honouring a Retry-After of seconds
// within the cap.
func (p retryPolicy) wait(n int, resp *http.Response) time.Duration {
	d := p.backoff << (n - 1)
	if d <= 0 || d > p.cap {
		d = p.cap
	}
	if resp != nil {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			d = min(time.Duration(s)*time.Second, p.cap)
		}
	}
	return d
}

// do sends the request build returns, retrying on network errors and on statuses retry
// accepts, at most p.attempts times. It returns the final response (body open; the caller
// closes it) or the last error. Errors never contain the URL.
func (p retryPolicy) do(ctx context.Context, c *http.Client, log *zap.Logger, what string,
	build func(ctx context.Context) (*http.Request, error), retry func(status int) bool) (*http.Response, error) {
	var lastErr error
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, p.timeout)
		req, err := build(actx)
		if err != nil {
			cancel()
			return nil, err
		}
		resp, err := c.Do(req)
		if err == nil && !retry(resp.StatusCode) {
			resp.Body = cancelOnClose{resp.Body, cancel}
			return resp, nil
		}
		if err != nil {
			lastErr = fmt.Errorf("%w: %s: %w", ErrDelivery, what, bareNetError(err))
		} else {
			lastErr = fmt.Errorf("%w: %s: HTTP %d", ErrDelivery, what, resp.StatusCode)
		}
		if n >= p.attempts || ctx.Err() != nil {
			if resp != nil {
				drain(resp)
			}
			cancel()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrDelivery, what, ctx.Err())
			}
			return nil, fmt.Errorf("%w (after %d attempts)", lastErr, n)
		}
		d := p.wait(n, resp)
		if resp != nil {
			drain(resp)
		}
		cancel()
		log.Warn("otp: delivery attempt failed; retrying", zap.String("sender", what), zap.Int("attempt", n),
			zap.Duration("backoff", d), zap.Error(lastErr))
		if err := sleep(ctx, d); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrDelivery, what, err)
		}
	}
}

// bareNetError drops the *url.Error wrapper, whose text repeats the URL (which may carry a
// token in its query).
func bareNetError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// drain reads a little of the body so the connection can be reused, then closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
