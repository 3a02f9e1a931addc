package webhook

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerifySignature feeds arbitrary headers to the receiver-side parser: it must not panic,
// must reject with ErrSignature, and may accept only a header holding the body's real MAC.
func FuzzVerifySignature(f *testing.F) {
	secret := []byte(testSecret)
	now := time.Unix(1767225600, 0)
	body := []byte(`{"id":"jti_1"}`)
	good := Sign(secret, now, body)
	for _, seed := range []string{good, good + ",v1=00", "t=1767225600", "v1=" + strings.Repeat("a", 64),
		"t=,v1=", "t=-1," + good[14:], " t=1767225600 , v1=" + good[16:], "t=01767225600," + good[14:], ",,,", "t=1=2"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		err := VerifySignature(secret, header, body, now, 0)
		if err != nil {
			if !errors.Is(err, ErrSignature) {
				t.Fatalf("error %v does not wrap ErrSignature", err)
			}
			return
		}
		if !strings.Contains(strings.ToLower(header), good[strings.Index(good, "v1="):]) { // hex is case-blind
			t.Fatalf("accepted %q, which lacks the body's MAC", header)
		}
	})
}
