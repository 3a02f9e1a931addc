package webhook

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Defaults and bounds for Config.
const (
	DefaultMaxAttempts = 8
	MaxMaxAttempts     = 100
	DefaultBaseBackoff = time.Second
	DefaultMaxBackoff  = 5 * time.Minute
	DefaultTimeout     = 10 * time.Second
	// MaxRetryAfter caps how long a receiver's Retry-After can park a delivery.
	MaxRetryAfter = time.Hour
	// MinSecretLen is the shortest Secret Validate accepts, in bytes.
	MinSecretLen = 16
	// MaxURLs bounds the CRM endpoints one event fans out to.
	MaxURLs = 16
)

// Config is the CRM delivery configuration (keys crm_webhook_urls, crm_webhook_secret).
// Zero fields take the defaults named on each field.
type Config struct {
	// URLs each receive every event. https, or http to a loopback host (anywhere with
	// AllowHTTP). At least one; at most 16.
	URLs []string
	// Secret keys the HMAC-SHA256 signature; at least 16 bytes. Required.
	Secret string
	// MaxAttempts bounds the attempts per delivery, 1 to 100. Default 8.
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape the back-off before attempt n+1: uniform in
	// [0, min(MaxBackoff, BaseBackoff·2^(n−1))]. Defaults 1 s and 5 min.
	BaseBackoff, MaxBackoff time.Duration
	// Timeout bounds one attempt, response headers included. Default 10 s.
	Timeout time.Duration
	// AllowHTTP permits plain http to a host that is not loopback: the token then crosses
	// the network in clear, so only on a trusted link.
	AllowHTTP bool
}

func (c Config) withDefaults() Config {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BaseBackoff == 0 {
		c.BaseBackoff = DefaultBaseBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate checks the configuration after applying the defaults. Messages name a URL by its
// position and host only (a query string may hold a credential) and never the secret.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...)
	}
	switch {
	case len(c.URLs) == 0:
		return bad("no webhook URL")
	case len(c.URLs) > MaxURLs:
		return bad("%d webhook URLs: at most %d", len(c.URLs), MaxURLs)
	case len(c.Secret) < MinSecretLen:
		return bad("webhook secret is %d bytes: want at least %d", len(c.Secret), MinSecretLen)
	case c.MaxAttempts < 1 || c.MaxAttempts > MaxMaxAttempts:
		return bad("max attempts %d: want 1 to %d", c.MaxAttempts, MaxMaxAttempts)
	case c.BaseBackoff < 0 || c.MaxBackoff < c.BaseBackoff:
		return bad("back-off %v to %v: want 0 <= base <= max", c.BaseBackoff, c.MaxBackoff)
	case c.Timeout < 0:
		return bad("timeout %v: want more than 0", c.Timeout)
	}
	seen := map[string]bool{}
	for i, raw := range c.URLs {
		if err := checkURL(raw, c.AllowHTTP); err != nil {
			return bad("webhook URL #%d: %v", i+1, err)
		}
		if seen[raw] {
			return bad("webhook URL #%d is listed twice", i+1)
		}
		seen[raw] = true
	}
	return nil
}

func checkURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("not an absolute URL")
	}
	if u.User != nil {
		return fmt.Errorf("host %s: credentials in the URL are not allowed", u.Hostname())
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if allowHTTP || isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("host %s: plain http to a host that is not loopback (the token would cross in clear; set AllowHTTP on a trusted link)", u.Hostname())
	}
	return fmt.Errorf("host %s: scheme must be https", u.Hostname())
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hostOf returns a URL's host for logs.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return "?"
}
