package redis_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/redis/redistest"
	"github.com/callproof/callproof/sessions/token"
)

// TestRedeemAcrossNodes: POST /v1/tokens/redeem on two nodes sharing Redis: a token is
// redeemed once in all, and with Redis down nothing is accepted.
func TestRedeemAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	prefix := redistest.Prefix()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	signer, err := token.NewSigner(key, token.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for range 2 {
		h := httptest.NewServer(token.RedeemHandler(signer, []string{agentKey}, open(t, srv.Addr, prefix)))
		t.Cleanup(h.Close)
		urls = append(urls, h.URL)
	}
	redeem := func(url, raw string) int {
		body, _ := json.Marshal(map[string]string{"token": raw})
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+agentKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	issue := func() string {
		raw, _, err := signer.Issue(context.Background(), sessions.Claims{Subject: "cus_ada", Call: "CA1", ACR: "urn:callproof:ccpa:reasonable"})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	raw := issue()
	if got := redeem(urls[0], raw); got != http.StatusOK {
		t.Fatalf("first on node 0: %d", got)
	}
	if got := redeem(urls[1], raw); got != http.StatusConflict {
		t.Fatalf("second on node 1: %d", got)
	}
	contended := issue()
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for i := range 20 {
		wg.Go(func() {
			code := redeem(urls[i%2], contended)
			mu.Lock()
			counts[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[http.StatusOK] != 1 || counts[http.StatusConflict] != 19 {
		t.Fatalf("contended redemption: %v", counts)
	}
	srv.Stop()
	if got := redeem(urls[1], issue()); got != http.StatusServiceUnavailable {
		t.Fatalf("with Redis down: %d, want 503", got)
	}
}
