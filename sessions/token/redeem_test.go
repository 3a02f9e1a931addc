package token_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/token"
)

const agentKey = "agent-key-0123456789abcdef"

// downReplay is a replay store that cannot be reached.
type downReplay struct{}

func (downReplay) Consume(context.Context, string, time.Time) (bool, error) {
	return false, fmt.Errorf("redis: dial: %w", sessions.ErrUnavailable)
}

var _ sessions.Replay = downReplay{}

type redeemEnv struct {
	signer *token.Signer
	srv    *httptest.Server
	now    atomic.Pointer[time.Time]
}

func (e *redeemEnv) clock() time.Time { return *e.now.Load() }

func (e *redeemEnv) setNow(t time.Time) { e.now.Store(&t) }

func newRedeemEnv(t *testing.T, replay sessions.Replay) *redeemEnv {
	t.Helper()
	e := &redeemEnv{signer: newSigner(t, testKey, token.WithRand(rand.Reader))}
	e.setNow(issuedAt.Add(time.Minute))
	if replay == nil {
		replay = sessions.NewMemory(sessions.WithClock(e.clock))
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/tokens/redeem", token.RedeemHandler(e.signer, []string{agentKey, "other-agent-key-0123456789"}, replay,
		token.WithRedeemClock(e.clock)))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (e *redeemEnv) post(t *testing.T, method, auth, ctype, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+"/v1/tokens/redeem", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(data)}
}

func (e *redeemEnv) redeem(t *testing.T, raw string) reply {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"token": raw})
	return e.post(t, http.MethodPost, "Bearer "+agentKey, "application/json", string(body))
}

func decodeError(t *testing.T, r reply) token.RedeemError {
	t.Helper()
	var e token.RedeemError
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return e
}

func TestRedeemFirstThenConflict(t *testing.T) {
	e := newRedeemEnv(t, nil)
	raw, jti := issue(t, e.signer, testClaims())
	first := e.redeem(t, raw)
	if first.status != http.StatusOK {
		t.Fatalf("first redemption: %d %s", first.status, first.body)
	}
	var got token.Redemption
	if err := json.Unmarshal([]byte(first.body), &got); err != nil {
		t.Fatal(err)
	}
	c := testClaims()
	if got.ID != jti || got.Subject != c.Subject || got.Call != c.Call || got.ACR != c.ACR ||
		got.KeyID != e.signer.KeyID() || got.Issuer != token.DefaultIssuer || got.Expiry != issuedAt.Add(token.DefaultLifetime).Unix() ||
		fmt.Sprint(got.AMR) != fmt.Sprint(c.AMR) || !got.Declaration {
		t.Fatalf("claims %+v", got)
	}
	if first.header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(first.header.Get("Content-Type"), "application/json") {
		t.Fatalf("headers %v", first.header)
	}
	second := e.redeem(t, raw)
	if second.status != http.StatusConflict || decodeError(t, second).Error != token.CodeRedeemed {
		t.Fatalf("second redemption: %d %s", second.status, second.body)
	}
	// Another token of the same call is a different jti.
	other, _, err := e.signer.Issue(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.redeem(t, other); r.status != http.StatusOK {
		t.Fatalf("other token: %d %s", r.status, r.body)
	}
}

func TestRedeemConcurrentExactlyOnce(t *testing.T) {
	e := newRedeemEnv(t, nil)
	raw, _ := issue(t, e.signer, testClaims())
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			r := e.redeem(t, raw)
			mu.Lock()
			counts[r.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[http.StatusOK] != 1 || counts[http.StatusConflict] != 19 {
		t.Fatalf("statuses %v, want one 200 and nineteen 409", counts)
	}
}

func TestRedeemRejects(t *testing.T) {
	e := newRedeemEnv(t, nil)
	good, _ := issue(t, e.signer, testClaims())
	stranger := newSigner(t, otherKey)
	strangerTok, _ := issue(t, stranger, testClaims())
	otherAud, err := token.NewSigner(testKey, token.Config{Audience: "someone-else"}, token.WithClock(func() time.Time { return issuedAt }))
	if err != nil {
		t.Fatal(err)
	}
	otherAudTok, _ := issue(t, otherAud, testClaims())
	expired, err := token.NewSigner(testKey, token.Config{}, token.WithClock(func() time.Time { return issuedAt.Add(-time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	expiredTok, _ := issue(t, expired, testClaims())
	body := func(raw string) string { b, _ := json.Marshal(map[string]string{"token": raw}); return string(b) }
	bearer := "Bearer " + agentKey
	const ctype = "application/json"
	tests := []struct {
		name                   string
		method, auth, ct, body string
		status                 int
		code, reason           string
	}{
		{"no key", "POST", "", ctype, body(good), 401, token.CodeUnauthorized, ""},
		{"wrong key", "POST", "Bearer wrong-key-0123456789", ctype, body(good), 401, token.CodeUnauthorized, ""},
		{"key prefix", "POST", "Bearer " + agentKey[:10], ctype, body(good), 401, token.CodeUnauthorized, ""},
		{"basic scheme", "POST", "Basic " + agentKey, ctype, body(good), 401, token.CodeUnauthorized, ""},
		{"GET", "GET", bearer, ctype, "", 405, token.CodeMethod, ""},
		{"form body", "POST", bearer, "application/x-www-form-urlencoded", "token=" + good, 415, token.CodeUnsupportedType, ""},
		{"no content type", "POST", bearer, "", body(good), 415, token.CodeUnsupportedType, ""},
		{"malformed JSON", "POST", bearer, ctype, `{"token":`, 400, token.CodeBadRequest, ""},
		{"not an object", "POST", bearer, ctype, `["` + good + `"]`, 400, token.CodeBadRequest, ""},
		{"unknown field", "POST", bearer, ctype, `{"token":"x","extra":1}`, 400, token.CodeBadRequest, ""},
		{"trailing data", "POST", bearer, ctype, body(good) + `{}`, 400, token.CodeBadRequest, ""},
		{"no token", "POST", bearer, ctype, `{}`, 400, token.CodeBadRequest, ""},
		{"empty token", "POST", bearer, ctype, `{"token":""}`, 400, token.CodeBadRequest, ""},
		{"too large", "POST", bearer, ctype, `{"token":"` + strings.Repeat("a", 20<<10) + `"}`, 413, token.CodeTooLarge, ""},
		{"garbage token", "POST", bearer, ctype, body("not.a.token"), 422, token.CodeInvalidToken, "malformed token"},
		{"tampered signature", "POST", bearer, ctype, body(tamperSignature(good)), 422, token.CodeInvalidToken, "invalid signature"},
		{"unknown key", "POST", bearer, ctype, body(strangerTok), 422, token.CodeInvalidToken, "unknown key id"},
		{"wrong audience", "POST", bearer, ctype, body(otherAudTok), 422, token.CodeInvalidToken, "wrong audience"},
		{"expired", "POST", bearer, ctype, body(expiredTok), 422, token.CodeInvalidToken, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, tt.method, tt.auth, tt.ct, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tt.status, r.body)
			}
			got := decodeError(t, r)
			if got.Error != tt.code || (tt.reason != "" && got.Reason != tt.reason) {
				t.Fatalf("body %+v, want %s %q", got, tt.code, tt.reason)
			}
			for _, part := range strings.Split(good, ".") {
				if strings.Contains(r.body, part) {
					t.Fatal("response echoes part of the token")
				}
			}
			if tt.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	// None of those consumed the good token.
	if r := e.redeem(t, good); r.status != http.StatusOK {
		t.Fatalf("good token after the rejections: %d %s", r.status, r.body)
	}
}

func TestRedeemStoreDownFailsClosed(t *testing.T) {
	e := newRedeemEnv(t, downReplay{})
	raw, _ := issue(t, e.signer, testClaims())
	r := e.redeem(t, raw)
	if r.status != http.StatusServiceUnavailable || decodeError(t, r).Error != token.CodeUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("store down: %d %v %s", r.status, r.header, r.body)
	}
	if strings.Contains(r.body, "redis") {
		t.Fatalf("store error leaked to the client: %s", r.body)
	}
}

// TestRedeemRemembersUntilExpiry: the jti is held until exp plus the leeway, then the token
// is refused as expired rather than redeemable again.
func TestRedeemRemembersUntilExpiry(t *testing.T) {
	e := newRedeemEnv(t, nil)
	raw, _ := issue(t, e.signer, testClaims())
	if r := e.redeem(t, raw); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	e.setNow(issuedAt.Add(token.DefaultLifetime + token.DefaultRedeemLeeway - time.Second))
	if r := e.redeem(t, raw); r.status != http.StatusConflict {
		t.Fatalf("within the leeway: %d %s", r.status, r.body)
	}
	e.setNow(issuedAt.Add(token.DefaultLifetime + token.DefaultRedeemLeeway))
	if r := e.redeem(t, raw); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("after expiry: %d %s", r.status, r.body)
	}
}
