package sip

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/callproof/callproof/media"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"full", Config{Listen: "127.0.0.1:5060", RTPPortMin: 10000, RTPPortMax: 20000, PublicIP: "203.0.113.5",
			Users: map[string]string{"t": "p"}, AllowFrom: loopback, TransferURI: "sip:agents@pbx.example.com;transport=tcp",
			RTPTimeout: time.Second, DTMF: media.DTMFEvents}, true},
		{"listen without port", Config{Listen: "127.0.0.1"}, false},
		{"listen host name", Config{Listen: "localhost:5060"}, false},
		{"one rtp bound", Config{RTPPortMin: 10000}, false},
		{"rtp bounds reversed", Config{RTPPortMin: 20000, RTPPortMax: 10000}, false},
		{"privileged rtp port", Config{RTPPortMin: 100, RTPPortMax: 200}, false},
		{"public ip unspecified", Config{PublicIP: "0.0.0.0"}, false},
		{"public ip name", Config{PublicIP: "pbx.example.com"}, false},
		{"empty password", Config{Users: map[string]string{"t": ""}}, false},
		{"bad user", Config{Users: map[string]string{"a b": "x"}}, false},
		{"bad header name", Config{TokenHeader: "X Token"}, false},
		{"transfer to tel", Config{TransferURI: "tel:+18005550100"}, false},
		{"transfer with headers", Config{TransferURI: "sip:a@b?X-A=1"}, false},
		{"tiny rtp timeout", Config{RTPTimeout: time.Millisecond}, false},
		{"inband without detector", Config{DTMF: media.DTMFInband}, false},
		{"bad prefix", Config{AllowFrom: []netip.Prefix{{}}}, false},
		{"empty dialled map entry", Config{DialedMap: map[string]string{"1": ""}}, false},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
	}
	if _, err := NewServer(Config{Listen: "x"}, nil, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("NewServer with a bad config: %v", err)
	}
}

func TestDigestAndInfoWithClient(t *testing.T) {
	rec := newRecord()
	srv := startServer(t, Config{Users: map[string]string{"trunk1": "s3cret"}}, recordFlow(rec, func(leg media.Leg, ev media.Event) bool {
		if ev.Type == media.EventDTMF && ev.Digit == '#' {
			_ = leg.Hangup("done")
		}
		return false
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// No credentials: 401. Wrong ones: 403.
	if _, err := Dial(ctx, srv.Addr().String()); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "401") {
		t.Errorf("dial without credentials: %v", err)
	}
	if _, err := Dial(ctx, srv.Addr().String(), WithAuth("trunk1", "guess")); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "403") {
		t.Errorf("dial with a wrong password: %v", err)
	}
	cl, err := Dial(ctx, srv.Addr().String(), WithAuth("trunk1", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.SendDTMFInfo(ctx, '9'); err != nil {
		t.Fatal(err)
	}
	if err := cl.SendDTMF('#'); err != nil {
		t.Fatal(err)
	}
	var closed string
	for ev := range cl.Events() {
		if ev.Kind == media.SimClosed {
			closed = ev.Reason
		}
	}
	rec.wait(t, 5*time.Second)
	if got := rec.Digits(); got != "9#" || rec.srcs[0] != media.SourceSIPInfo || rec.srcs[1] != media.SourceRFC4733 {
		t.Errorf("digits %q from %v", got, rec.srcs)
	}
	if closed != "bye" {
		t.Errorf("client closed with %q, want bye", closed)
	}
	if srv.Refused() != 1 {
		t.Errorf("refused %d, want 1 (the wrong password; challenges are not refusals)", srv.Refused())
	}
}

func TestRefusedWithoutUsersOrAllowFrom(t *testing.T) {
	srv := startServer(t, Config{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, srv.Addr().String()); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "403") {
		t.Errorf("dial: %v, want 403", err)
	}
}

// TestShutdownEndsCalls: when the server's context ends, a live call gets BYE, the flow sees
// ErrShutdown, and ListenAndServe returns after everything has finished (goleak checks).
func TestShutdownEndsCalls(t *testing.T) {
	rec := newRecord()
	started := make(chan struct{})
	s, err := NewServer(Config{Listen: "127.0.0.1:0", AllowFrom: loopback}, recordFlow(rec, func(leg media.Leg, ev media.Event) bool {
		if ev.Type == media.EventStart {
			close(started)
		}
		return false
	}), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.ListenAndServe(ctx) }()
	<-s.Ready()
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	cl, err := Dial(dctx, s.Addr().String())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer cl.Close()
	<-started
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("ListenAndServe: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return")
	}
	rec.wait(t, time.Second)
	if !errors.Is(rec.err, ErrShutdown) {
		t.Errorf("flow saw %v, want ErrShutdown", rec.err)
	}
	var closed string
	for ev := range cl.Events() {
		if ev.Kind == media.SimClosed {
			closed = ev.Reason
		}
	}
	if closed != "bye" {
		t.Errorf("client closed with %q, want bye", closed)
	}
}

// TestLogsKeepSecrets runs a call with digits, a token and an unparseable INFO through a
// debug-level JSON logger and checks that none of them reaches the log.
func TestLogsKeepSecrets(t *testing.T) {
	var buf syncBuffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig()), &buf, zapcore.DebugLevel))
	rec := newRecord()
	const token = "eyJTOKEN.SECRET.VALUE"
	s, err := NewServer(Config{Listen: "127.0.0.1:0", AllowFrom: loopback, TransferURI: "sip:agents@127.0.0.1:5999"},
		recordFlow(rec, func(leg media.Leg, ev media.Event) bool {
			if ev.Type == media.EventDTMF && ev.Digit == '#' {
				leg.(interface{ SetHandoff(map[string]string) }).SetHandoff(map[string]string{HandoffToken: token})
				_ = leg.Hangup("verified")
			}
			return false
		}), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.ListenAndServe(ctx) }()
	<-s.Ready()
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	cl, err := Dial(dctx, s.Addr().String(), WithFrom("+14155550100"))
	if err != nil {
		t.Fatal(err)
	}
	// An INFO that does not parse (bad CSeq), carrying a digit.
	c, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("INFO sip:callproof@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\nCall-ID: " +
		cl.CallID() + "\r\nCSeq: x INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 17\r\n\r\nSignal=7\r\nX=4829\r\n"))
	_ = c.Close()
	// Over TCP sipgo parses first: messages that do not parse, quoting the caller's number
	// in the start line and in a From header. The server closes each connection.
	for _, raw := range []string{"CALL +14155550100 NOW\r\n\r\n",
		"INVITE sip:callproof@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKy\r\nFrom: *;tag=+14155550100\r\n" +
			"Call-ID: tcp-bad\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"} {
		tc, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = tc.Write([]byte(raw))
		_ = tc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(tc); err != nil {
			t.Errorf("a TCP message that does not parse: %v, want the connection closed", err)
		}
		_ = tc.Close()
	}
	for _, d := range []byte("4829#") {
		if err := cl.SendDTMF(d); err != nil {
			t.Fatal(err)
		}
	}
	for range cl.Events() {
	}
	_ = cl.Close()
	rec.wait(t, 5*time.Second)
	cancel()
	<-errc
	out := buf.String()
	for _, secret := range []string{token, "4829", "Signal=7", "14155550100"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q", secret)
		}
	}
	if !strings.Contains(out, `"data_len":25`) {
		t.Errorf("log lacks the TCP parse failure")
	}
	if !strings.Contains(out, "***0100") || !strings.Contains(out, "sip call ended") {
		t.Errorf("log lacks the masked caller or the end line")
	}
	if cl.Token() != token {
		t.Errorf("client token %q", cl.Token())
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Sync() error { return nil }

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestLegPlayValidation(t *testing.T) {
	l := &Leg{}
	for _, c := range []struct {
		clip *media.Clip
		mark string
	}{{nil, "m"}, {toneClip(t, "x", 20*time.Millisecond, 440), ""}, {toneClip(t, "x", 20*time.Millisecond, 440), strings.Repeat("m", 300)}} {
		if err := l.Play(c.clip, c.mark); !errors.Is(err, ErrInvalidPlay) {
			t.Errorf("Play(%v, %q) = %v", c.clip, c.mark, err)
		}
	}
	if got := l.Info(); got.Transport != "sip" || got.NativeMarks {
		t.Errorf("Info() = %+v", got)
	}
}

// TestShutdownDrains: Shutdown refuses new calls with 503 and waits for the live one to end.
func TestShutdownDrains(t *testing.T) {
	rec := newRecord()
	srv := startServer(t, Config{AllowFrom: loopback}, recordFlow(rec, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := Dial(ctx, srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	drained := make(chan error, 1)
	go func() { drained <- srv.Shutdown(ctx) }()
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err := Dial(ctx, srv.Addr().String())
		if errors.Is(err, ErrRejected) && strings.Contains(err.Error(), "503") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a new call during shutdown: %v, want 503", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-drained:
		t.Fatalf("Shutdown returned %v with a call live", err)
	default:
	}
	_ = cl.Close() // the caller hangs up: the drain completes
	select {
	case err := <-drained:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last call ended")
	}
	rec.wait(t, time.Second)
	if !errors.Is(rec.err, media.ErrHangup) {
		t.Errorf("flow saw %v, want the caller's hangup", rec.err)
	}
}

// INVITEs from one address beyond the limit get 503 with Retry-After before any
// authentication or SDP work; a negative rate turns the limit off.
func TestInviteRateLimitPerAddress(t *testing.T) {
	srv := startServer(t, Config{AllowFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		InvitesPerMinute: 1, InvitesBurst: 1}, func(ctx context.Context, leg media.Leg) { _ = leg.Hangup("done") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := Dial(ctx, srv.Addr().String())
	if err != nil {
		t.Fatalf("first call refused: %v", err)
	}
	cl.Close()
	if cl2, err := Dial(ctx, srv.Addr().String()); err == nil {
		cl2.Close()
		t.Fatal("a second INVITE within the limit's period was admitted")
	} else if !strings.Contains(err.Error(), "503") {
		t.Fatalf("second call: %v, want a 503", err)
	}
	s2, err := NewServer(Config{InvitesPerMinute: -1, AllowFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		func(context.Context, media.Leg) {}, nil)
	if err != nil || s2.invites != nil {
		t.Fatalf("a negative rate should turn the limit off (%v)", err)
	}
}
