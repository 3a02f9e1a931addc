package audiosocket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/media"
)

const wait = 5 * time.Second

// legServer starts a server whose serve function hands each leg to the test and returns when
// the call ends.
func legServer(t *testing.T, cfg Config) (*testServer, chan media.Leg) {
	t.Helper()
	legs := make(chan media.Leg, 4)
	ts := startServer(t, cfg, func(ctx context.Context, leg media.Leg) {
		legs <- leg
		<-ctx.Done()
	})
	return ts, legs
}

func nextLeg(t *testing.T, legs chan media.Leg) media.Leg {
	t.Helper()
	select {
	case l := <-legs:
		return l
	case <-time.After(wait):
		t.Fatal("no call reached the serve function")
	}
	return nil
}

// TestScriptedCall runs two calls over loopback TCP: registered metadata, digits as events, a
// prompt played and acknowledged, barge-in with Clear, and a hangup from each side.
func TestScriptedCall(t *testing.T) {
	reg := NewRegistry(RegistryConfig{Keys: []string{"reg-key-1"}})
	hs := httptest.NewServer(RegistryHandler(reg, zaptest.NewLogger(t)))
	defer hs.Close()
	ts, legs := legServer(t, Config{Lookup: reg.Lookup})

	uuid := NewUUID()
	body := `{"uuid":"` + strings.ToUpper(FormatUUID(uuid)) + `","from":"+14155550100","to":"+18005550199",` +
		`"verstat":"TN-Validation-Passed-A","request":"delete","lang":"es-US","account":"40001234"}`
	req, _ := http.NewRequest(http.MethodPost, hs.URL+RegistryPath, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer reg-key-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("registration: HTTP %d", resp.StatusCode)
	}

	// Call 1: the server plays, is barged in on, and hangs up.
	cl := dial(t, ts.addr, uuid)
	leg := nextLeg(t, legs)
	ev := nextEvent(t, leg, wait)
	if ev.Type != media.EventStart {
		t.Fatalf("first event %v, want start", ev.Type)
	}
	want := media.Start{CallID: FormatUUID(uuid), StreamID: FormatUUID(uuid), Transport: "audiosocket",
		From: "+14155550100", To: "+18005550199", Verstat: "TN-Validation-Passed-A",
		Params: map[string]string{"request": "delete", "lang": "es-US", "account": "40001234"}}
	if got := ev.Start; got.CallID != want.CallID || got.StreamID != want.StreamID || got.Transport != want.Transport ||
		got.From != want.From || got.To != want.To || got.Verstat != want.Verstat || !mapsEqual(got.Params, want.Params) {
		t.Fatalf("start %+v\nwant  %+v", *got, want)
	}
	if reg.Len() != 0 {
		t.Fatalf("registration not removed on use")
	}
	if info := leg.Info(); info.Transport != "audiosocket" || info.NativeMarks {
		t.Fatalf("info %+v", info)
	}

	for _, d := range []byte("42#") {
		if err := cl.SendDTMF(d); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []byte("42#") {
		ev := nextEvent(t, leg, wait)
		if ev.Type != media.EventDTMF || ev.Digit != d || ev.Source != media.SourceEvent {
			t.Fatalf("got %+v, want digit %c from an event", ev, d)
		}
	}

	welcome := toneClip(t, "welcome", 100*time.Millisecond)
	if err := leg.Play(welcome, "welcome"); err != nil {
		t.Fatal(err)
	}
	var heard []int16
	for range welcome.Frames() {
		ev := nextSim(t, cl, wait)
		if ev.Kind != media.SimAudio || len(ev.Audio) != media.FrameSamples {
			t.Fatalf("got %+v, want one 20 ms frame", ev.Kind)
		}
		heard = append(heard, ev.Audio...)
	}
	if !slices.Equal(heard, welcome.PCM()) {
		t.Fatalf("the client heard different audio from the clip")
	}
	if ev := nextEvent(t, leg, wait); ev.Type != media.EventMark || ev.Mark != "welcome" || !ev.Played {
		t.Fatalf("got %+v, want mark welcome played", ev)
	}

	long := toneClip(t, "ask_dob", 2*time.Second)
	if err := leg.Play(long, "ask_dob"); err != nil {
		t.Fatal(err)
	}
	if err := leg.Play(welcome, "queued"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if ev := nextSim(t, cl, wait); ev.Kind != media.SimAudio {
			t.Fatalf("got %v, want audio", ev.Kind)
		}
	}
	if err := leg.Clear(); err != nil {
		t.Fatal(err)
	}
	for _, mark := range []string{"ask_dob", "queued"} {
		if ev := nextEvent(t, leg, wait); ev.Type != media.EventMark || ev.Mark != mark || ev.Played {
			t.Fatalf("got %+v, want mark %s not played", ev, mark)
		}
	}
	if err := leg.Hangup("verified"); err != nil {
		t.Fatal(err)
	}
	closed, frames := waitClosed(t, cl, wait)
	if closed.Reason != "hangup" {
		t.Fatalf("client saw %q, want the server's hangup frame", closed.Reason)
	}
	if frames > 2 {
		t.Fatalf("%d frames arrived after Clear; playback did not stop", frames)
	}
	if ev := drainLeg(t, leg, wait); ev.Type != media.EventHangup || !errors.Is(ev.Err, media.ErrLegClosed) {
		t.Fatalf("last event %+v, want hangup with ErrLegClosed", ev)
	}
	if err := leg.Play(welcome, "late"); !errors.Is(err, media.ErrLegClosed) {
		t.Fatalf("Play after hangup: %v", err)
	}
	s := leg.(*Leg).Stats()
	if s.Marks != 1 || s.Clears != 2 || s.FramesOut < 8 {
		t.Fatalf("stats %+v", s)
	}

	// Call 2: unregistered, the caller hangs up.
	uuid2 := NewUUID()
	cl2 := dial(t, ts.addr, uuid2)
	leg2 := nextLeg(t, legs)
	ev = nextEvent(t, leg2, wait)
	if ev.Type != media.EventStart || ev.Start.CallID != FormatUUID(uuid2) || ev.Start.From != "" {
		t.Fatalf("start %+v, want call id = uuid and no metadata", ev.Start)
	}
	if err := cl2.SendAudio(make([]int16, 3*media.FrameSamples)); err != nil {
		t.Fatal(err)
	}
	if err := cl2.Hangup(); err != nil {
		t.Fatal(err)
	}
	if ev := drainLeg(t, leg2, wait); ev.Type != media.EventHangup || !errors.Is(ev.Err, media.ErrHangup) {
		t.Fatalf("last event %+v, want hangup with ErrHangup", ev)
	}
	if closed, _ := waitClosed(t, cl2, wait); closed.Reason != "closed" {
		t.Fatalf("client saw %q, want the server to close", closed.Reason)
	}
	if got := leg2.(*Leg).Stats().FramesIn; got != 3 {
		t.Fatalf("frames in = %d, want 3", got)
	}
	if err := cl2.SendDTMF('1'); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("SendDTMF after hangup: %v", err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestBadInput sends each kind of broken stream, checks that only that call ends (with a
// hangup frame where we are the side hanging up) and that the server then serves a good call.
func TestBadInput(t *testing.T) {
	uuid := frame(kindUUID, bytes.Repeat([]byte{7}, 16))
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name     string
		send     []byte
		started  bool   // the UUID was accepted and a leg started
		hangup   bool   // we send 00 00 00 before closing
		protocol bool   // the leg ends with media.ErrProtocol
		reason   string // in the leg's error
	}{
		{"audio before uuid", frame(kindSlin, make([]byte, 320)), false, true, false, ""},
		{"short uuid", frame(kindUUID, make([]byte, 4)), false, true, false, ""},
		{"oversize first frame", []byte{kindUUID, 0x40, 0x00}, false, true, false, ""},
		{"unknown kind", cat(uuid, frame(0x42, nil)), true, true, true, "unknown frame kind 0x42"},
		{"slin16 kind", cat(uuid, frame(0x11, make([]byte, 640))), true, true, true, "0x11"},
		{"odd audio", cat(uuid, frame(kindSlin, make([]byte, 321))), true, true, true, "321 bytes"},
		{"oversize audio", cat(uuid, []byte{kindSlin, 0x20, 0x00}), true, true, true, "exceeds 4096"},
		{"bad digit", cat(uuid, frame(kindDTMF, []byte("x"))), true, true, true, "DTMF"},
		{"second uuid", cat(uuid, uuid), true, true, true, "second UUID"},
		{"asterisk error", cat(uuid, frame(kindError, []byte{0x02})), true, false, true, "frame forwarding error"},
		{"asterisk hangup", cat(uuid, frame(kindHangup, nil)), true, false, false, ""},
		{"close mid-frame", cat(uuid, []byte{kindSlin, 0x01}), true, false, false, ""},
	}
	ts, legs := legServer(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if !tt.hangup { // the peer closes (or stalls mid-frame then closes)
				_ = conn.(*net.TCPConn).CloseWrite()
			}
			_ = conn.SetReadDeadline(time.Now().Add(wait))
			got, err := io.ReadAll(conn)
			if err != nil && !isReset(err) {
				t.Fatalf("reading the server's answer: %v", err)
			}
			if tt.hangup && !bytes.Equal(got, hangupFrame[:]) {
				t.Fatalf("server sent %x, want a hangup frame then EOF", got)
			}
			if !tt.hangup && len(got) != 0 {
				t.Fatalf("server sent %x, want nothing", got)
			}
			if !tt.started {
				select {
				case <-legs:
					t.Fatal("a leg started for a connection without a valid UUID")
				case <-time.After(50 * time.Millisecond):
				}
				return
			}
			leg := nextLeg(t, legs)
			if ev := nextEvent(t, leg, wait); ev.Type != media.EventStart {
				t.Fatalf("first event %v", ev.Type)
			}
			ev := drainLeg(t, leg, wait)
			if ev.Type != media.EventHangup {
				t.Fatalf("last event %v, want hangup", ev.Type)
			}
			if isProtocol(ev.Err) != tt.protocol || !strings.Contains(ev.Err.Error(), tt.reason) {
				t.Fatalf("hangup reason %v; want protocol=%v containing %q", ev.Err, tt.protocol, tt.reason)
			}
		})
	}

	// The server still serves a good call.
	cl := dial(t, ts.addr, NewUUID())
	leg := nextLeg(t, legs)
	if ev := nextEvent(t, leg, wait); ev.Type != media.EventStart {
		t.Fatalf("good call: first event %v", ev.Type)
	}
	clip := toneClip(t, "goodbye", 40*time.Millisecond)
	if err := leg.Play(clip, "goodbye"); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, leg, wait); ev.Type != media.EventMark || !ev.Played {
		t.Fatalf("good call: got %+v, want the mark", ev)
	}
	_ = leg.Hangup("done")
	if closed, frames := waitClosed(t, cl, wait); closed.Reason != "hangup" || frames != 2 {
		t.Fatalf("good call: client saw %d frames and %q", frames, closed.Reason)
	}
}

func isReset(err error) bool { return errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset") }

// TestAllowFrom checks that a connection from outside AllowFrom is closed before any frame is
// read and never reaches the flow, while an allowed one is served.
func TestAllowFrom(t *testing.T) {
	ts, legs := legServer(t, Config{AllowFrom: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write(frame(kindUUID, make([]byte, 16)))
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	if got, _ := io.ReadAll(conn); len(got) != 0 {
		t.Fatalf("refused connection got %x", got)
	}
	select {
	case <-legs:
		t.Fatal("refused connection reached the flow")
	case <-time.After(50 * time.Millisecond):
	}
	if ts.Refused() != 1 {
		t.Fatalf("refused = %d, want 1", ts.Refused())
	}

	ts2, legs2 := legServer(t, Config{AllowFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	cl := dial(t, ts2.addr, NewUUID())
	leg := nextLeg(t, legs2)
	_ = leg.Hangup("done")
	if closed, _ := waitClosed(t, cl, wait); closed.Reason != "hangup" {
		t.Fatalf("allowed client saw %q", closed.Reason)
	}
}

// TestShutdown checks the two ways a server stops: Shutdown waits for a live call to end on
// its own; Close (or a Shutdown whose context ends) hangs it up.
func TestShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	legs := make(chan media.Leg, 1)
	s := NewServer(Config{}, func(ctx context.Context, leg media.Leg) {
		legs <- leg
		<-ctx.Done()
	}, zaptest.NewLogger(t))
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(context.Background(), ln) }()
	cl := dial(t, ln.Addr().String(), NewUUID())
	leg := nextLeg(t, legs)

	shut := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { shut <- s.Shutdown(ctx) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a call live", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("server still accepting after Shutdown")
	}
	if err := cl.Hangup(); err != nil { // the call ends on its own
		t.Fatal(err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	drainLeg(t, leg, wait)

	// Close hangs up live calls.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s2 := NewServer(Config{}, func(ctx context.Context, leg media.Leg) {
		legs <- leg
		<-ctx.Done()
	}, zaptest.NewLogger(t))
	go func() { errc <- s2.Serve(context.Background(), ln2) }()
	cl2 := dial(t, ln2.Addr().String(), NewUUID())
	leg2 := nextLeg(t, legs)
	silent, err := net.Dial("tcp", ln2.Addr().String()) // connected, no UUID yet
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	time.Sleep(20 * time.Millisecond)
	began := time.Now()
	_ = s2.Close()
	if d := time.Since(began); d > time.Second {
		t.Fatalf("Close took %s: it waited for a connection that never sent its UUID", d)
	}
	_ = s2.Close() // idempotent
	if err := <-errc; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if closed, _ := waitClosed(t, cl2, wait); closed.Reason != "hangup" {
		t.Fatalf("client saw %q, want a hangup frame", closed.Reason)
	}
	if ev := drainLeg(t, leg2, wait); ev.Type != media.EventHangup {
		t.Fatalf("last event %v", ev.Type)
	}
}

// TestRegistryHandler checks the registration endpoint's answers.
func TestRegistryHandler(t *testing.T) {
	reg := NewRegistry(RegistryConfig{Keys: []string{"k1", "k2"}, MaxEntries: 2})
	h := RegistryHandler(reg, zaptest.NewLogger(t))
	u := FormatUUID(NewUUID())
	tests := []struct {
		name   string
		method string
		auth   string
		body   string
		want   int
	}{
		{"ok", "POST", "Bearer k2", `{"uuid":"` + u + `","from":"+14155550100"}`, 201},
		{"again replaces", "POST", "bearer k1", `{"uuid":"` + u + `","lang":"en-US"}`, 201},
		{"no key", "POST", "", `{"uuid":"` + u + `"}`, 401},
		{"wrong key", "POST", "Bearer k3", `{"uuid":"` + u + `"}`, 401},
		{"basic auth", "POST", "Basic azE6", `{"uuid":"` + u + `"}`, 401},
		{"GET", "GET", "Bearer k1", "", 405},
		{"bad json", "POST", "Bearer k1", `{"uuid":`, 400},
		{"empty", "POST", "Bearer k1", ``, 400},
		{"unknown field", "POST", "Bearer k1", `{"uuid":"` + u + `","pin":"1234"}`, 400},
		{"two objects", "POST", "Bearer k1", `{"uuid":"` + u + `"}{}`, 400},
		{"wrong type", "POST", "Bearer k1", `{"uuid":"` + u + `","from":5}`, 400},
		{"bad uuid", "POST", "Bearer k1", `{"uuid":"not-a-uuid"}`, 400},
		{"no uuid", "POST", "Bearer k1", `{"from":"+14155550100"}`, 400},
		{"control chars", "POST", "Bearer k1", `{"uuid":"` + u + `","from":"+1\n"}`, 400},
		{"long field", "POST", "Bearer k1", `{"uuid":"` + u + `","to":"` + strings.Repeat("9", 200) + `"}`, 400},
		{"too big", "POST", "Bearer k1", `{"uuid":"` + u + `","from":"` + strings.Repeat(" ", 5000) + `"}`, 413},
		{"second", "POST", "Bearer k1", `{"uuid":"` + FormatUUID(NewUUID()) + `"}`, 201},
		{"full", "POST", "Bearer k1", `{"uuid":"` + FormatUUID(NewUUID()) + `"}`, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, RegistryPath, strings.NewReader(tt.body))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("HTTP %d (%s), want %d", rec.Code, rec.Body.String(), tt.want)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("answer is not JSON: %q", rec.Body.String())
			}
			if strings.Contains(rec.Body.String(), "1234") || strings.Contains(rec.Body.String(), "4155550100") {
				t.Fatalf("answer echoes a value: %s", rec.Body.String())
			}
			if tt.want == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	st, ok := reg.Lookup(context.Background(), strings.ToUpper(u))
	if !ok || st.From != "" || st.Param("lang") != "en-US" || st.CallID != u {
		t.Fatalf("lookup = %+v, %v; want the replacing registration", st, ok)
	}
	if _, ok := reg.Lookup(context.Background(), u); ok {
		t.Fatal("registration used twice")
	}

	none := RegistryHandler(NewRegistry(RegistryConfig{}), nil)
	req := httptest.NewRequest("POST", RegistryPath, strings.NewReader(`{"uuid":"`+u+`"}`))
	req.Header.Set("Authorization", "Bearer ")
	rec := httptest.NewRecorder()
	none.ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("registry without keys answered %d, want 401", rec.Code)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{DTMF: 9},
		{DTMF: media.DTMFInband},
		{IdleTimeout: -1},
		{IdleTimeout: time.Millisecond},
		{AllowFrom: []netip.Prefix{{}}},
	}
	for i, c := range bad {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("config %d: %v, want ErrConfig", i, err)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	for i, c := range []RegistryConfig{{Keys: []string{""}}, {Keys: []string{" k"}}, {TTL: -1}, {TTL: 2 * time.Hour}, {MaxEntries: -1}} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("registry config %d: %v, want ErrConfig", i, err)
		}
	}
	// An invalid config refuses to serve.
	s := NewServer(Config{DTMF: 9}, nil, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(context.Background(), ln); !errors.Is(err, ErrConfig) {
		t.Fatalf("Serve with a bad config: %v", err)
	}
}
