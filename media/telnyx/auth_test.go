package telnyx

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
)

// TestAuth: with an AuthToken the upgrade must present it, in Telnyx's header or as a bearer
// token; without one the request gets 401, with a wrong one 403, both before any upgrade, and
// the flow never runs.
func TestAuth(t *testing.T) {
	const token = "stream-token-9f2c"
	for _, tc := range []struct {
		name   string
		server string
		header http.Header
		status int // 0: accepted
	}{
		{"telnyx header", token, http.Header{TokenHeader: {token}}, 0},
		{"bearer", token, http.Header{"Authorization": {"Bearer " + token}}, 0},
		{"bearer, lower case", token, http.Header{"Authorization": {"bearer " + token}}, 0},
		{"absent", token, nil, http.StatusUnauthorized},
		{"empty header", token, http.Header{TokenHeader: {""}}, http.StatusUnauthorized},
		{"basic auth", token, http.Header{"Authorization": {"Basic " + token}}, http.StatusUnauthorized},
		{"wrong", token, http.Header{TokenHeader: {"stream-token-9f2d"}}, http.StatusForbidden},
		{"prefix", token, http.Header{TokenHeader: {token[:5]}}, http.StatusForbidden},
		{"longer", token, http.Header{TokenHeader: {token + "x"}}, http.StatusForbidden},
		{"check off", "", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestServer(t, Config{AuthToken: tc.server}, func(ctx context.Context, leg media.Leg) { legEvents(leg) })
			conn, resp, err := websocket.DefaultDialer.Dial(srv.url(), tc.header)
			if tc.status != 0 {
				if err == nil {
					conn.Close()
					t.Fatalf("upgrade accepted, want %d", tc.status)
				}
				if resp == nil || resp.StatusCode != tc.status || resp.Header.Get("Upgrade") != "" {
					t.Fatalf("dial: %v (%v), want plain HTTP %d", err, resp, tc.status)
				}
				if n := srv.calls(); n != 0 {
					t.Errorf("serve ran %d times for a refused stream", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			conn.Close()
		})
	}
}

// TestDialAuth: the client presents CallParams.AuthToken as Telnyx does, and reports a refusal
// as ErrRejected with the status.
func TestDialAuth(t *testing.T) {
	srv := newTestServer(t, Config{AuthToken: "tok"}, func(ctx context.Context, leg media.Leg) { legEvents(leg) })
	for _, tc := range []struct {
		token, status string
	}{{"", "401"}, {"bad", "403"}} {
		if _, err := Dial(context.Background(), srv.url(), CallParams{AuthToken: tc.token}); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.status) {
			t.Errorf("Dial with token %q: %v, want ErrRejected with %s", tc.token, err, tc.status)
		}
	}
	cl, err := Dial(context.Background(), srv.url(), CallParams{AuthToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Stop(); err != nil {
		t.Fatal(err)
	}
	events(t, cl)
	srv.Close()
	srv.running.Wait() // the handler has returned
	if n := srv.calls(); n != 1 {
		t.Errorf("serve ran %d times, want 1", n)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"full", Config{AuthToken: "t", ReadLimit: 4096, StartTimeout: 1, DTMF: media.DTMFInband,
			NewDetector: func() media.ToneDetector { return &quiet{} }}, true},
		{"token with spaces", Config{AuthToken: " t"}, false},
		{"negative read limit", Config{ReadLimit: -1}, false},
		{"tiny read limit", Config{ReadLimit: 10}, false},
		{"huge read limit", Config{ReadLimit: 1 << 30}, false},
		{"negative timeout", Config{StartTimeout: -1}, false},
		{"inband without detector", Config{DTMF: media.DTMFInband}, false},
		{"unknown dtmf mode", Config{DTMF: 9}, false},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("%s: Validate = %v", tc.name, err)
		}
	}
	// A handler with a bad config refuses every stream with 500.
	srv := newTestServer(t, Config{ReadLimit: -1}, func(ctx context.Context, leg media.Leg) { legEvents(leg) })
	if _, resp, err := websocket.DefaultDialer.Dial(srv.url(), nil); err == nil || resp == nil || resp.StatusCode != 500 {
		t.Errorf("dial to a misconfigured handler: %v %v, want 500", err, resp)
	}
}
