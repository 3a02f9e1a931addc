package sip

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Digest authentication of INVITEs (RFC 3261 §22.4, RFC 2617 with qop=auth, MD5 as SIP trunks
// use it). Nonces are stateless: the issue time and an HMAC of it under a key made at start,
// valid for nonceLifetime, so no per-challenge state is kept and a restart invalidates them.

const nonceLifetime = 5 * time.Minute

type authVerdict uint8

const (
	authOK       authVerdict = iota
	authNone                 // no credentials: challenge
	authStale                // a nonce we issued but too old: challenge with stale=true
	authRejected             // wrong user, password, realm or nonce: 403
)

type digestAuth struct {
	realm string
	users map[string]string
	key   [32]byte
	now   func() time.Time
}

func newDigestAuth(realm string, users map[string]string) *digestAuth {
	a := &digestAuth{realm: realm, users: users, now: time.Now}
	_, _ = rand.Read(a.key[:])
	return a
}

func (a *digestAuth) nonce() string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(a.now().UnixNano()))
	m := hmac.New(sha256.New, a.key[:])
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// checkNonce reports whether n is ours and whether it is still fresh.
func (a *digestAuth) checkNonce(n string) (ours, fresh bool) {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 24 {
		return false, false
	}
	m := hmac.New(sha256.New, a.key[:])
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return false, false
	}
	age := a.now().Sub(time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))))
	return true, age >= -time.Minute && age <= nonceLifetime
}

// challenge is a WWW-Authenticate value.
func (a *digestAuth) challenge(stale bool) string {
	c := digest.Challenge{Realm: a.realm, Nonce: a.nonce(), Algorithm: "MD5", QOP: []string{"auth"}, Stale: stale}
	return c.String()
}

// verify checks the credentials of req (Authorization, or Proxy-Authorization for a peer that
// answers as if we were a proxy). It returns the user name on success.
func (a *digestAuth) verify(req *sip.Request) (string, authVerdict) {
	h := req.GetHeader("Authorization")
	if h == nil {
		h = req.GetHeader("Proxy-Authorization")
	}
	if h == nil {
		return "", authNone
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil || cred.Username == "" || cred.Response == "" {
		return "", authRejected
	}
	ours, fresh := a.checkNonce(cred.Nonce)
	switch {
	case !ours:
		return "", authNone // someone else's nonce (an old challenge, another node): challenge again
	case !fresh:
		return "", authStale
	case cred.Realm != a.realm:
		return "", authRejected
	case cred.QOP != "" && cred.QOP != "auth":
		return "", authRejected
	case cred.Algorithm != "" && !strings.EqualFold(cred.Algorithm, "MD5"):
		return "", authRejected
	case !sameURI(cred.URI, &req.Recipient):
		return "", authRejected
	}
	password, known := a.users[cred.Username]
	if !known {
		password = "\x00unknown user" // same work as a known user, then refused
	}
	chal := &digest.Challenge{Realm: a.realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, Opaque: cred.Opaque}
	if cred.QOP != "" {
		chal.QOP = []string{cred.QOP}
	}
	want, err := digest.Digest(chal, digest.Options{Method: string(req.Method), URI: cred.URI,
		Username: cred.Username, Password: password, Cnonce: cred.Cnonce, Count: cred.Nc})
	if err != nil {
		return "", authRejected
	}
	ok := subtle.ConstantTimeCompare([]byte(strings.ToLower(cred.Response)), []byte(want.Response)) == 1
	if !ok || !known {
		return "", authRejected
	}
	return cred.Username, authOK
}

// sameURI reports whether a digest-uri names the Request-URI's host (RFC 2617 §3.2.2.5). The
// user part is not compared: SIPp and some trunks put sip:host:port there whatever the user.
func sameURI(s string, r *sip.Uri) bool {
	var u sip.Uri
	if sip.ParseUri(s, &u) != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, r.Scheme) && strings.EqualFold(u.Host, r.Host) &&
		(u.Port == r.Port || u.Port == 0 || r.Port == 0)
}
