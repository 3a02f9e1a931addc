package otp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions/otp"
)

// smtpSession is what the test server saw on one connection.
type smtpSession struct {
	helo, from, rcpt, data string
	tls                    bool
	auth                   string // decoded AUTH PLAIN response: "\x00user\x00pass"
}

// smtpBehaviour says what the test server offers and refuses.
type smtpBehaviour struct {
	offerTLS bool
	auth     bool
	rejectAt string // command answered with 5xx (its text quotes what it received)
}

// smtpServer is a minimal SMTP server (RFC 5321 subset: EHLO/HELO, STARTTLS, AUTH PLAIN,
// MAIL, RCPT, DATA, RSET, NOOP, QUIT) on loopback, one goroutine per connection.
type smtpServer struct {
	smtpBehaviour
	ln       net.Listener
	tls      *tls.Config
	wg       sync.WaitGroup
	mu       sync.Mutex
	sessions []smtpSession
}

func startSMTP(t *testing.T, s *smtpServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() { _ = ln.Close(); s.wg.Wait() })
	return ln.Addr().String()
}

func (s *smtpServer) serve(c net.Conn) {
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var sess smtpSession
	tp := textproto.NewConn(c)
	_ = tp.PrintfLine("220 test.local ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		if verb == s.rejectAt {
			_ = tp.PrintfLine("554 5.7.1 rejected: %s", arg) // quotes the address back
			continue
		}
		switch verb {
		case "EHLO", "HELO":
			sess.helo = arg
			ext := []string{"test.local", "8BITMIME"}
			if s.offerTLS && !sess.tls {
				ext = append(ext, "STARTTLS")
			}
			if s.auth {
				ext = append(ext, "AUTH PLAIN")
			}
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				_ = tp.PrintfLine("250%s%s", sep, e)
			}
		case "STARTTLS":
			_ = tp.PrintfLine("220 2.0.0 ready")
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, tp, sess.tls = tc, textproto.NewConn(tc), true
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			b, err := base64.StdEncoding.DecodeString(resp)
			if mech != "PLAIN" || err != nil {
				_ = tp.PrintfLine("504 5.5.4 unsupported")
				continue
			}
			sess.auth = string(b)
			_ = tp.PrintfLine("235 2.7.0 ok")
		case "MAIL":
			sess.from = arg
			_ = tp.PrintfLine("250 2.1.0 ok")
		case "RCPT":
			sess.rcpt = arg
			_ = tp.PrintfLine("250 2.1.5 ok")
		case "DATA":
			_ = tp.PrintfLine("354 go ahead")
			b, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			sess.data = string(b)
			s.mu.Lock() // recorded before the reply, so the client never gets ahead of it
			s.sessions = append(s.sessions, sess)
			s.mu.Unlock()
			_ = tp.PrintfLine("250 2.0.0 queued")
		case "RSET", "NOOP":
			_ = tp.PrintfLine("250 2.0.0 ok")
		case "QUIT":
			_ = tp.PrintfLine("221 2.0.0 bye")
			return
		default:
			_ = tp.PrintfLine("502 5.5.2 unknown command")
		}
	}
}

func (s *smtpServer) last(t *testing.T) smtpSession {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) == 0 {
		t.Fatal("no SMTP session")
	}
	return s.sessions[len(s.sessions)-1]
}

// loopbackTLS returns a server config with a fresh self-signed certificate for 127.0.0.1 and
// a client config that trusts it.
func loopbackTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func TestSMTPSend(t *testing.T) {
	srvTLS, cliTLS := loopbackTLS(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	msg := otp.Message{To: "Ada Lopez <ada@example.com>", Channel: otp.ChannelEmail, Code: "739184",
		ExpiresAt: now.Add(5 * time.Minute), Call: "CA123", Locale: "en-US"}
	for _, tc := range []struct {
		name    string
		server  smtpBehaviour
		cfg     otp.SMTPConfig
		locale  string
		wantTLS bool
		auth    string
		err     string
	}{
		{name: "plain relay", server: smtpBehaviour{}, cfg: otp.SMTPConfig{}},
		{name: "starttls when offered", server: smtpBehaviour{offerTLS: true}, wantTLS: true},
		{name: "starttls and auth plain", server: smtpBehaviour{offerTLS: true, auth: true},
			cfg: otp.SMTPConfig{Username: "otp@example.com", Password: "smtp-pass-1"}, wantTLS: true, auth: "\x00otp@example.com\x00smtp-pass-1"},
		{name: "spanish", server: smtpBehaviour{offerTLS: true}, locale: "es-US", wantTLS: true},
		{name: "tls required but not offered", server: smtpBehaviour{}, cfg: otp.SMTPConfig{RequireTLS: true}, err: "offers no STARTTLS"},
		{name: "auth configured, not offered", server: smtpBehaviour{offerTLS: true}, cfg: otp.SMTPConfig{Username: "u", Password: "p"}, err: "offers no AUTH"},
		{name: "recipient rejected", server: smtpBehaviour{rejectAt: "RCPT"}, err: "smtp RCPT: server replied 554"},
		{name: "message rejected", server: smtpBehaviour{rejectAt: "DATA"}, err: "smtp DATA: server replied 554"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &smtpServer{smtpBehaviour: tc.server, tls: srvTLS}
			cfg := tc.cfg
			cfg.Addr = startSMTP(t, srv)
			cfg.From = "Callproof <otp@example.com>"
			log, logs := observed(t)
			s, err := otp.NewSMTP(cfg, otp.WithTLSConfig(cliTLS), otp.WithSenderClock(func() time.Time { return now }), otp.WithSenderLogger(log))
			if err != nil {
				t.Fatal(err)
			}
			m := msg
			if tc.locale != "" {
				m.Locale = tc.locale
			}
			err = s.Send(t.Context(), m)
			assertNoSecret(t, logs, []error{err}, "739184", "smtp-pass-1", "ada@example.com")
			if tc.err != "" {
				if err == nil || !errors.Is(err, otp.ErrDelivery) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := srv.last(t)
			if got.tls != tc.wantTLS || got.auth != tc.auth || got.helo != "localhost" {
				t.Fatalf("session tls %v auth %q helo %q", got.tls, got.auth, got.helo)
			}
			if !strings.HasPrefix(got.from, "FROM:<otp@example.com>") || !strings.HasPrefix(got.rcpt, "TO:<ada@example.com>") {
				t.Fatalf("envelope %q %q", got.from, got.rcpt)
			}
			parsed, err := mail.ReadMessage(strings.NewReader(got.data))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(quotedprintable.NewReader(parsed.Body))
			body := strings.ReplaceAll(string(raw), "\n", "\r\n") // ReadDotBytes turned CRLF into LF
			subject, _ := new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject"))
			wantBody, wantSubject := "Your Callproof verification code is 739184.\r\n\r\nIt expires in 5 minutes.", "Your Callproof verification code"
			if m.Locale == "es-US" {
				wantBody, wantSubject = "Su código de verificación de Callproof es 739184.\r\n\r\nVence en 5 minutos.", "Su código de verificación de Callproof"
			}
			if !strings.HasPrefix(body, wantBody) || subject != wantSubject {
				t.Fatalf("subject %q body %q", subject, body)
			}
			if strings.Contains(subject, "739184") || strings.Contains(body, "Ada") || strings.Contains(body, "CA123") {
				t.Fatal("the mail says more than the code and its validity")
			}
			for k, v := range map[string]string{"To": "<ada@example.com>", "From": `"Callproof" <otp@example.com>`,
				"Content-Type": "text/plain; charset=utf-8", "Content-Language": m.Locale, "Date": now.Format(time.RFC1123Z)} {
				if parsed.Header.Get(k) != v {
					t.Errorf("%s: %q, want %q", k, parsed.Header.Get(k), v)
				}
			}
		})
	}
}

func TestSMTPRejects(t *testing.T) {
	s, err := otp.NewSMTP(otp.SMTPConfig{Addr: "127.0.0.1:1", From: "otp@example.com", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []otp.Message{
		{To: "+14155550100", Channel: otp.ChannelSMS, Code: "739184"},
		{To: "not an address", Channel: otp.ChannelEmail, Code: "739184"},
		{To: "ada@example.com\r\nBcc: eve@example.com", Channel: otp.ChannelEmail, Code: "739184"},
		{To: "ada@example.com", Channel: otp.ChannelEmail, Code: "739184"}, // nothing listens on port 1
	} {
		if err := s.Send(t.Context(), m); !errors.Is(err, otp.ErrDelivery) || strings.Contains(err.Error(), "739184") {
			t.Errorf("%s: %v", m, err)
		}
	}
	for _, cfg := range []otp.SMTPConfig{
		{From: "otp@example.com"},
		{Addr: "smtp.example.com", From: "otp@example.com"},
		{Addr: "smtp.example.com:587", From: "nobody"},
		{Addr: "smtp.example.com:587", From: "otp@example.com", Username: "u"},
	} {
		if err := cfg.Validate(); !errors.Is(err, otp.ErrInvalidConfig) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}
