package otp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
)

// Channels a code can be delivered on (the webhook's "channel" field).
const (
	ChannelSMS   = "sms"
	ChannelEmail = "email"
	ChannelVoice = "voice"
)

// Locales the built-in message texts exist in; any other falls back to LocaleEnglish.
const (
	LocaleEnglish = "en-US"
	LocaleSpanish = "es-US"
)

// Contact is one destination on file for a customer: a phone number (E.164) for sms or
// voice, an addr-spec for email. Contacts come from the customer directory only, never from
// what a caller keys in.
type Contact struct {
	Channel string
	To      string
}

// Message is what a Sender delivers. Code is a Passcode, redacted in every encoding; To is
// the unmasked destination, so log Masked() instead.
type Message struct {
	// To is the destination on file: an E.164 number or an email address.
	To string
	// Channel is ChannelSMS, ChannelEmail or ChannelVoice.
	Channel string
	// Code is the passcode; only Code.Reveal() gives the digits.
	Code Passcode
	// ExpiresAt is when the code stops being accepted.
	ExpiresAt time.Time
	// Call is the platform's call id, for correlation.
	Call string
	// Locale is the caller's language, "en-US" or "es-US".
	Locale string
}

var _ zapcore.ObjectMarshaler = Message{}

// Masked returns the destination masked for logs (Mask).
func (m Message) Masked() string { return Mask(m.To) }

// MarshalLogObject logs the message without its code and with a masked destination.
func (m Message) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("channel", m.Channel)
	enc.AddString("to", m.Masked())
	enc.AddString("call", m.Call)
	enc.AddString("locale", m.Locale)
	enc.AddTime("expires_at", m.ExpiresAt)
	return nil
}

// String describes m without its code and with a masked destination.
func (m Message) String() string {
	return fmt.Sprintf("otp message channel=%s to=%s call=%s expires=%s", m.Channel, m.Masked(), m.Call,
		m.ExpiresAt.UTC().Format(time.RFC3339))
}

// Sender delivers a message on one channel. An error means the message may not have reached
// the contact; it wraps ErrDelivery and never contains the code. Implementations: *Webhook,
// *SMTP, *Twilio, *Inbox.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Senders picks the sender for a channel; nil means the channel has none. *Router implements it.
type Senders interface {
	For(channel string) Sender
}

// Router picks a sender by channel: SMS, Email or Voice when set, else Fallback. The usual
// wiring is SMS = Twilio when configured, Email = SMTP when configured, Fallback = the webhook
// (serve) or the Inbox (demo). Leave a field nil (not a nil pointer of a concrete type) to
// fall back.
type Router struct {
	SMS, Email, Voice Sender
	Fallback          Sender
}

var _ Senders = (*Router)(nil)

// For implements Senders.
func (r *Router) For(channel string) Sender {
	var s Sender
	switch channel {
	case ChannelSMS:
		s = r.SMS
	case ChannelEmail:
		s = r.Email
	case ChannelVoice:
		s = r.Voice
	default:
		return nil
	}
	if s == nil {
		s = r.Fallback
	}
	return s
}

// Mask hides a destination for logs and agents: a phone number keeps its last four digits
// ("+14155550100" becomes "***0100", as media.MaskPhone does), an email address the first
// letter of its local part and of its domain and the top-level domain ("ada@example.com"
// becomes "a***@e***.com").
func Mask(to string) string {
	if at := strings.LastIndexByte(to, '@'); at >= 0 {
		return maskEmail(to[:at], to[at+1:])
	}
	var digits []byte
	for i := 0; i < len(to); i++ {
		if c := to[i]; c >= '0' && c <= '9' {
			digits = append(digits, c)
		}
	}
	if len(digits) == 0 {
		return ""
	}
	if len(digits) <= 4 {
		return strings.Repeat("*", len(digits))
	}
	return "***" + string(digits[len(digits)-4:])
}

func maskEmail(local, domain string) string {
	first := func(s string) string {
		for _, r := range s {
			return string(r)
		}
		return "*"
	}
	tld := ""
	if dot := strings.LastIndexByte(domain, '.'); dot >= 0 {
		tld = domain[dot:]
	}
	return first(local) + "***@" + first(domain) + "***" + tld
}

// texts are the built-in message texts. %[1]s is the brand, %[2]s the code, %[3]d the
// validity in minutes. They say the code and its validity and nothing personal.
var texts = map[string]struct {
	sms, subject, email string
	minute, minutes     string
}{
	LocaleEnglish: {
		sms:     "Your %[1]s verification code is %[2]s. It expires in %[3]d %[4]s. Do not share it with anyone.",
		subject: "Your %[1]s verification code",
		email: "Your %[1]s verification code is %[2]s.\r\n\r\nIt expires in %[3]d %[4]s. Do not share it with anyone.\r\n\r\n" +
			"If you did not ask for this code, you can ignore this message.\r\n",
		minute: "minute", minutes: "minutes",
	},
	LocaleSpanish: {
		sms:     "Su código de verificación de %[1]s es %[2]s. Vence en %[3]d %[4]s. No lo comparta con nadie.",
		subject: "Su código de verificación de %[1]s",
		email: "Su código de verificación de %[1]s es %[2]s.\r\n\r\nVence en %[3]d %[4]s. No lo comparta con nadie.\r\n\r\n" +
			"Si usted no pidió este código, puede ignorar este mensaje.\r\n",
		minute: "minuto", minutes: "minutos",
	},
}

// DefaultBrand names the service in message texts.
const DefaultBrand = "Callproof"

// validMinutes is the code's remaining validity at now in whole minutes, rounded up, at least 1.
func validMinutes(expires, now time.Time) int {
	d := expires.Sub(now)
	n := int((d + time.Minute - 1) / time.Minute)
	return max(n, 1)
}

func localized(locale string) (sms, subject, email, minute, minutes string) {
	t, ok := texts[locale]
	if !ok {
		t = texts[LocaleEnglish]
	}
	return t.sms, t.subject, t.email, t.minute, t.minutes
}

// SMSText is the SMS body for m in its locale at now.
func SMSText(brand string, m Message, now time.Time) string {
	sms, _, _, one, many := localized(m.Locale)
	n := validMinutes(m.ExpiresAt, now)
	return fmt.Sprintf(sms, brandOr(brand), m.Code.Reveal(), n, plural(n, one, many))
}

// EmailText returns the subject line (no code in it) and the plain-text body for m in its
// locale at now.
func EmailText(brand string, m Message, now time.Time) (subject, body string) {
	_, subj, email, one, many := localized(m.Locale)
	n := validMinutes(m.ExpiresAt, now)
	return fmt.Sprintf(subj, brandOr(brand)), fmt.Sprintf(email, brandOr(brand), m.Code.Reveal(), n, plural(n, one, many))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func brandOr(b string) string {
	if b == "" {
		return DefaultBrand
	}
	return b
}
