package otp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"go.uber.org/zap"
)

// DefaultSMTPTimeout bounds one SMTP exchange.
const DefaultSMTPTimeout = 15 * time.Second

// SMTPConfig configures email delivery over SMTP (RFC 5321) with net/smtp.
type SMTPConfig struct {
	// Addr is the server, host:port (587 for submission with STARTTLS, 465 with ImplicitTLS,
	// 25 for a relay). Required.
	Addr string
	// From is the sender, an addr-spec or "Name <addr-spec>". Required.
	From string
	// Username and Password enable AUTH PLAIN (RFC 4616). net/smtp refuses PLAIN over a
	// connection without TLS unless the server is on loopback.
	Username, Password string
	// ImplicitTLS connects with TLS from the start (port 465). Otherwise STARTTLS (RFC 3207)
	// is used whenever the server offers it.
	ImplicitTLS bool
	// RequireTLS fails the delivery when the server offers no STARTTLS, rather than sending
	// the code in clear.
	RequireTLS bool
	// HelloName is the name given in EHLO. Default "localhost".
	HelloName string
	// Timeout bounds the whole exchange. Default 15 s.
	Timeout time.Duration
	// Brand names the service in the subject and the text. Default "Callproof".
	Brand string
}

func (c SMTPConfig) withDefaults() SMTPConfig {
	if c.HelloName == "" {
		c.HelloName = "localhost"
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultSMTPTimeout
	}
	return c
}

// Validate checks the address, sender and credentials (after defaults). Messages never
// contain the password.
func (c SMTPConfig) Validate() error {
	c = c.withDefaults()
	if _, _, err := net.SplitHostPort(c.Addr); err != nil || c.Addr == "" {
		return fmt.Errorf("%w: smtp addr: want host:port", ErrInvalidConfig)
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("%w: smtp from: want an email address", ErrInvalidConfig)
	}
	switch {
	case (c.Username == "") != (c.Password == ""):
		return fmt.Errorf("%w: smtp username and password go together", ErrInvalidConfig)
	case strings.ContainsAny(c.HelloName, " \r\n"):
		return fmt.Errorf("%w: smtp hello name: no spaces or line breaks", ErrInvalidConfig)
	case c.Timeout < 0:
		return fmt.Errorf("%w: smtp timeout %v: want more than 0", ErrInvalidConfig, c.Timeout)
	}
	return nil
}

// SMTP delivers email messages: a plain-text (quoted-printable, UTF-8) mail in the message's
// locale that says the code and how long it is valid, and nothing else personal. The
// subject line does not contain the code (it shows on lock screens).
type SMTP struct {
	cfg  SMTPConfig
	host string
	from *mail.Address
	opts senderOptions
}

var _ Sender = (*SMTP)(nil)

// NewSMTP returns an SMTP email sender.
func NewSMTP(cfg SMTPConfig, opts ...SenderOption) (*SMTP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	host, _, _ := net.SplitHostPort(cfg.Addr)
	from, _ := mail.ParseAddress(cfg.From)
	return &SMTP{cfg: cfg, host: host, from: from, opts: applySenderOptions(opts)}, nil
}

// Send implements Sender for ChannelEmail.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if m.Channel != ChannelEmail {
		return fmt.Errorf("%w: smtp: channel %q is not email", ErrDelivery, m.Channel)
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil || strings.ContainsAny(to.Address, "\r\n") {
		return fmt.Errorf("%w: smtp: recipient is not an email address", ErrDelivery)
	}
	msg, err := s.compose(to, m)
	if err != nil {
		return err
	}
	if err := s.deliver(ctx, to.Address, msg); err != nil {
		return scrub(err, m.Code)
	}
	s.opts.log.Debug("otp: smtp delivered", zap.Object("message", m))
	return nil
}

func (s *SMTP) tlsConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.opts.tls != nil {
		c = s.opts.tls.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = s.host
	}
	return c
}

func (s *SMTP) deliver(ctx context.Context, rcpt string, msg []byte) (err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("%w: smtp: connect: %w", ErrDelivery, err)
	}
	if s.cfg.ImplicitTLS {
		tc := tls.Client(conn, s.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return fmt.Errorf("%w: smtp: tls: %w", ErrDelivery, err)
		}
		conn = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		_ = conn.Close()
		return smtpErr("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.HelloName); err != nil {
		return smtpErr("EHLO", err)
	}
	if !s.cfg.ImplicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tlsConfig()); err != nil {
				return smtpErr("STARTTLS", err)
			}
		} else if s.cfg.RequireTLS {
			return fmt.Errorf("%w: smtp: server offers no STARTTLS and TLS is required", ErrDelivery)
		}
	}
	if s.cfg.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("%w: smtp: server offers no AUTH", ErrDelivery)
		}
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.host)); err != nil {
			return smtpErr("AUTH", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return smtpErr("MAIL", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return smtpErr("RCPT", err)
	}
	w, err := c.Data()
	if err != nil {
		return smtpErr("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		_ = w.Close()
		return smtpErr("DATA", err)
	}
	if err := w.Close(); err != nil {
		return smtpErr("DATA", err)
	}
	if err := c.Quit(); err != nil {
		s.opts.log.Debug("otp: smtp QUIT failed after the message was accepted", zap.Error(smtpErr("QUIT", err)))
	}
	return nil
}

// smtpErr keeps a server's reply code and drops its text, which may quote the recipient's
// address or the message.
func smtpErr(stage string, err error) error {
	if te, ok := errors.AsType[*textproto.Error](err); ok {
		return fmt.Errorf("%w: smtp %s: server replied %d", ErrDelivery, stage, te.Code)
	}
	if strings.Contains(err.Error(), "unencrypted connection") {
		return fmt.Errorf("%w: smtp %s: refusing to send credentials over a connection without TLS", ErrDelivery, stage)
	}
	// Errors of the client side (network, TLS verification, net/smtp's own checks) quote no
	// address and no message text.
	return fmt.Errorf("%w: smtp %s: %w", ErrDelivery, stage, err)
}

// compose builds the RFC 5322 message with CRLF line ends.
func (s *SMTP) compose(to *mail.Address, m Message) ([]byte, error) {
	now := s.opts.now()
	subject, text := EmailText(s.cfg.Brand, m, now)
	var body bytes.Buffer
	qp := quotedprintable.NewWriter(&body)
	if _, err := qp.Write([]byte(text)); err != nil {
		return nil, fmt.Errorf("%w: smtp: encode body", ErrDelivery)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("%w: smtp: encode body", ErrDelivery)
	}
	domain := "localhost"
	if at := strings.LastIndexByte(s.from.Address, '@'); at >= 0 {
		domain = s.from.Address[at+1:]
	}
	lang := m.Locale
	if _, ok := texts[lang]; !ok {
		lang = LocaleEnglish
	}
	var b bytes.Buffer
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", s.from.String())
	hdr("To", (&mail.Address{Address: to.Address}).String())
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject))
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+newID()+"@"+domain+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	hdr("Content-Language", lang)
	hdr("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	b.Write(bytes.ReplaceAll(bytes.ReplaceAll(body.Bytes(), []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n")))
	return b.Bytes(), nil
}
