package sip

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

func TestDigestAuth(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newDigestAuth("callproof", map[string]string{"trunk1": "s3cret"})
	a.now = func() time.Time { return now }
	invite := func(auth string) *sip.Request {
		raw := "INVITE sip:svc@10.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK1\nFrom: <sip:a@10.0.0.2>;tag=1\n" +
			"To: <sip:svc@10.0.0.1>\nCall-ID: c1\nCSeq: 1 INVITE\nContact: <sip:a@10.0.0.2>\n"
		if auth != "" {
			raw += auth + "\n"
		}
		return parseRequest(t, raw+"Content-Length: 0\n\n")
	}
	creds := func(user, pass, uri string, mutate func(*digest.Challenge)) string {
		chal, err := digest.ParseChallenge(a.challenge(false))
		if err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(chal)
		}
		c, err := digest.Digest(chal, digest.Options{Method: "INVITE", URI: uri, Username: user, Password: pass})
		if err != nil {
			t.Fatal(err)
		}
		return "Authorization: " + c.String()
	}
	const uri = "sip:svc@10.0.0.1:5060"
	tests := []struct {
		name string
		auth string
		at   time.Time
		want authVerdict
		user string
	}{
		{name: "none", want: authNone},
		{name: "good", auth: creds("trunk1", "s3cret", uri, nil), want: authOK, user: "trunk1"},
		{name: "good as proxy credentials", auth: strings.Replace(creds("trunk1", "s3cret", uri, nil), "Authorization", "Proxy-Authorization", 1),
			want: authOK, user: "trunk1"},
		{name: "sipp style uri without user", auth: creds("trunk1", "s3cret", "sip:10.0.0.1:5060", nil), want: authOK, user: "trunk1"},
		{name: "wrong password", auth: creds("trunk1", "guess", uri, nil), want: authRejected},
		{name: "unknown user", auth: creds("mallory", "s3cret", uri, nil), want: authRejected},
		{name: "other host in uri", auth: creds("trunk1", "s3cret", "sip:svc@10.9.9.9", nil), want: authRejected},
		{name: "other realm", auth: creds("trunk1", "s3cret", uri, func(c *digest.Challenge) { c.Realm = "x" }), want: authRejected},
		{name: "forged nonce", auth: creds("trunk1", "s3cret", uri, func(c *digest.Challenge) { c.Nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }), want: authNone},
		{name: "old nonce", auth: creds("trunk1", "s3cret", uri, nil), at: now.Add(6 * time.Minute), want: authStale},
		{name: "no qop", auth: creds("trunk1", "s3cret", uri, func(c *digest.Challenge) { c.QOP = nil }), want: authOK, user: "trunk1"},
		{name: "auth-int", auth: creds("trunk1", "s3cret", uri, func(c *digest.Challenge) { c.QOP = []string{"auth-int"} }), want: authRejected},
		{name: "sha-256", auth: creds("trunk1", "s3cret", uri, func(c *digest.Challenge) { c.Algorithm = "SHA-256" }), want: authRejected},
		{name: "garbage", auth: "Authorization: Basic dHJ1bmsxOnMzY3JldA==", want: authRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := invite(tt.auth)
			at := now
			if !tt.at.IsZero() {
				at = tt.at
			}
			a.now = func() time.Time { return at }
			defer func() { a.now = func() time.Time { return now } }()
			user, got := a.verify(req)
			if got != tt.want || user != tt.user {
				t.Errorf("verify = %q %v, want %q %v", user, got, tt.user, tt.want)
			}
		})
	}
	if c := a.challenge(true); !strings.Contains(c, "stale=true") || !strings.Contains(c, `qop="auth"`) {
		t.Errorf("challenge %q", c)
	}
}
