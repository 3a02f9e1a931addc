package token_test

import (
	"strings"
	"testing"

	"github.com/callproof/callproof/sessions/token"
)

// FuzzVerify feeds arbitrary strings to Verify: it must not panic, and nothing but the
// signer's own, untouched token may verify.
func FuzzVerify(f *testing.F) {
	s := newSigner(f, testKey)
	good, _ := issue(f, s, testClaims())
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(tamperSignature(good))
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add("eyJhbGciOiJub25lIn0." + parts[1] + ".")
	f.Add("..")
	f.Add("")
	keys := s.JWKS()
	exp := token.Expected{Now: issuedAt}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := token.Verify(raw, keys, exp)
		if err == nil && raw != good {
			// Another encoding of the same signed bytes is the only other way in.
			if v.Subject != "cus_ada" || v.KeyID != s.KeyID() {
				t.Fatalf("verified a forged token: %+v", v)
			}
		}
		if err != nil && v != nil {
			t.Fatal("claims returned with an error")
		}
	})
}
