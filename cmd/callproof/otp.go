package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/callproof/callproof/ivr"
	"github.com/callproof/callproof/sessions/otp"
)

// passcodes adapts sessions/otp to the flow's Passcodes interface.
type passcodes struct{ svc *otp.Service }

var _ ivr.Passcodes = passcodes{}

func (p passcodes) Send(ctx context.Context, subject, call, locale string, to []ivr.Contact) (string, error) {
	contacts := make([]otp.Contact, 0, len(to))
	for _, c := range to {
		contacts = append(contacts, otp.Contact{Channel: c.Channel, To: c.To})
	}
	sent, err := p.svc.Send(ctx, otp.SendRequest{Subject: subject, Call: call, Locale: locale, Contacts: contacts})
	switch {
	case err == nil, errors.Is(err, otp.ErrDelivery):
		// A failed delivery is treated like a sent code: an unknown account cannot fail to
		// deliver, so doing anything else would tell the caller the account exists.
		return sent.Channel, nil
	case errors.Is(err, otp.ErrRateLimited), errors.Is(err, otp.ErrExhausted):
		return "", ivr.ErrPasscodeRejected
	}
	return "", err
}

func (p passcodes) Check(ctx context.Context, subject, keyed string) (bool, int, error) {
	res, err := p.svc.Check(ctx, subject, keyed)
	switch {
	case err == nil:
		return res.OK, res.Remaining, nil
	case errors.Is(err, otp.ErrNoCode), errors.Is(err, otp.ErrExhausted), errors.Is(err, otp.ErrExpired):
		return false, 0, ivr.ErrPasscodeRejected
	}
	return false, 0, err
}

// newPasscodes builds the passcode service and its senders from the configuration. The demo
// without a webhook delivers to its console and the /phone page's inbox.
func newPasscodes(cfg Config, demo bool, serverKey []byte, store otp.Store, console io.Writer, log *zap.Logger) (*otp.Service, *otp.Inbox, error) {
	r := &otp.Router{}
	var inbox *otp.Inbox
	switch {
	case cfg.OTPWebhook != "":
		wh, err := otp.NewWebhook(otp.WebhookConfig{URL: cfg.OTPWebhook, Secret: []byte(cfg.OTPWebhookSecret)},
			otp.WithSenderLogger(log))
		if err != nil {
			return nil, nil, err
		}
		r.Fallback = wh
	case demo:
		inbox = otp.NewInbox(50, otp.WithConsole(console), otp.WithSenderLogger(log))
		r.Fallback = inbox
	}
	if cfg.SMTPAddr != "" {
		s, err := otp.NewSMTP(otp.SMTPConfig{Addr: cfg.SMTPAddr, From: cfg.SMTPFrom, Username: cfg.SMTPUsername,
			Password: cfg.SMTPPassword}, otp.WithSenderLogger(log))
		if err != nil {
			return nil, nil, err
		}
		r.Email = s
	}
	if cfg.TwilioAccountSID != "" {
		tw, err := otp.NewTwilio(otp.TwilioConfig{AccountSID: cfg.TwilioAccountSID, AuthToken: cfg.TwilioAuthToken,
			From: cfg.TwilioFrom, BaseURL: cfg.TwilioBaseURL}, otp.WithSenderLogger(log))
		if err != nil {
			return nil, nil, err
		}
		r.SMS = tw
	}
	if r.Fallback == nil && r.SMS == nil && r.Email == nil {
		log.Warn("no passcode sender configured: authorized-agent verification cannot succeed (set otp_webhook, smtp_addr or twilio_account_sid)")
	}
	m := hmac.New(sha256.New, serverKey)
	m.Write([]byte("callproof otp v1"))
	svc, err := otp.NewService(otp.Config{HMACKey: m.Sum(nil)}, store, r, otp.WithLogger(log))
	if err != nil {
		return nil, nil, fmt.Errorf("passcodes: %w", err)
	}
	return svc, inbox, nil
}
