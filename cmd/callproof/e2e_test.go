package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/callproof/callproof/kba"
	"github.com/callproof/callproof/sessions/webhook"
)

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const testAgentKey = "ak_test_0123456789abcdef"

// node is a Callproof server on a loopback port.
type node struct {
	app  *App
	url  string
	logs *syncBuffer
	data string
	// audiosocket is the AudioSocket listener's address.
	audiosocket string
	// sip is the SIP listener's address.
	sip string
}

func startNode(t testing.TB, mutate func(*Config)) *node {
	t.Helper()
	n, _ := launchNode(t, mutate, nil)
	return n
}

// launchNode starts a node on loopback ports and returns a stop function (also run at
// cleanup) that waits for Serve to return. The demo's console output (where it prints
// passcodes: a delivery channel) goes to console, or into the logs buffer when console is nil.
func launchNode(t testing.TB, mutate func(*Config), console io.Writer) (*node, func()) {
	t.Helper()
	cfg := Config{HTTP: "127.0.0.1:0", AudioSocket: "127.0.0.1:0", SIP: "127.0.0.1:0", Data: t.TempDir(), AgentKeys: []string{testAgentKey}}
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.finish(true); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log, err := newLogger("json", "debug", logs)
	if err != nil {
		t.Fatal(err)
	}
	if console == nil {
		console = logs
	}
	app, err := NewApp(cfg, log, true, console)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	asAddr, err := app.ListenAudioSocket()
	if err != nil {
		t.Fatal(err)
	}
	sipAddr, err := app.ListenSIP()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("serve did not return within 30 s of being stopped")
			}
		})
	}
	t.Cleanup(stop)
	n := &node{app: app, url: "http://" + ln.Addr().String(), logs: logs, data: cfg.Data}
	if asAddr != nil {
		n.audiosocket = asAddr.String()
	}
	if sipAddr != nil {
		n.sip = sipAddr.String()
	}
	return n, stop
}

// callCLI runs `callproof call` against n and returns its exit error and output.
func (n *node) callCLI(t testing.TB, args ...string) (error, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append([]string{"call", "--server", n.url, "--agent-key", testAgentKey, "--timeout", "60s",
		"--audiosocket", n.audiosocket, "--sip", n.sip}, args...)
	err := run(context.Background(), args, func(string) string { return "" }, nil, &out, &errOut)
	return err, out.String() + errOut.String()
}

func TestCallVerifiedEndToEnd(t *testing.T) {
	n := startNode(t, nil)
	err, out := n.callCLI(t, "--customer", "cus_ada")
	if err != nil {
		t.Fatalf("call: %v\n%s", err, out)
	}
	for _, want := range []string{"prompt welcome", "prompt ask_account", "prompt ask_dob", "prompt ask_zip",
		"prompt verified", "outcome: verified", "agent: verified level reasonable", "token: signature verified"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCallWrongAnswersNotVerifiedThenLocked(t *testing.T) {
	n := startNode(t, nil)
	for i := 0; i < 3; i++ {
		err, out := n.callCLI(t, "--customer", "cus_ada", "--answers", "ask_zip=00000")
		if err == nil || !strings.Contains(out, "outcome: not_verified") || !strings.Contains(out, "agent: not verified: mismatch") {
			t.Fatalf("attempt %d: %v\n%s", i+1, err, out)
		}
	}
	err, out := n.callCLI(t, "--customer", "cus_ada", "--from", "+12125550000")
	if err == nil || !strings.Contains(out, "outcome: locked_out") || !strings.Contains(out, "agent: not verified: locked_out") {
		t.Fatalf("after three failures: %v\n%s", err, out)
	}
}

// The token the agent receives verifies with an independent JWT library against the JWKS
// served by the node.
func TestTokenVerifiesWithIndependentLibrary(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	o := callOptions{server: n.url, agentKey: testAgentKey, to: "+18005550199", from: "+14155550100",
		verstat: "TN-Validation-Passed-A", issuer: "callproof", audience: "callproof-agent"}
	answers, _, err := buildAnswers(callOptions{customer: "cus_ada"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := placeCall(ctx, o, answers, io.Discard)
	if err != nil || rep.Token == "" {
		t.Fatalf("call: %v, token %q", err, rep.Token)
	}
	resp, err := http.Get(n.url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "json") {
		t.Fatalf("JWKS content type %q", ct)
	}
	var set struct {
		Keys []struct{ Kty, Crv, X, Kid, Alg string } `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	keyfunc := func(tok *jwt.Token) (any, error) {
		for _, k := range set.Keys {
			if k.Kid == tok.Header["kid"] && k.Kty == "OKP" && k.Crv == "Ed25519" {
				x, err := base64.RawURLEncoding.DecodeString(k.X)
				if err != nil {
					return nil, err
				}
				return ed25519.PublicKey(x), nil
			}
		}
		return nil, fmt.Errorf("kid %v not in JWKS", tok.Header["kid"])
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(rep.Token, claims, keyfunc, jwt.WithValidMethods([]string{"EdDSA"}),
		jwt.WithIssuer("callproof"), jwt.WithAudience("callproof-agent"), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		t.Fatalf("golang-jwt rejects the token: %v", err)
	}
	for k, want := range map[string]any{"sub": "cus_ada", "call": rep.CallSid, "acr": "urn:callproof:ccpa:reasonable",
		"ccpa_request": "know_categories", "ani_match": true, "verstat": "TN-Validation-Passed-A"} {
		if claims[k] != want {
			t.Errorf("claim %s = %v, want %v", k, claims[k], want)
		}
	}
	for _, k := range []string{"jti", "iat", "exp", "amr", "data_points", "request_id"} {
		if _, ok := claims[k]; !ok {
			t.Errorf("claim %s missing", k)
		}
	}
	// The offline verifier accepts it too, given the JWKS as a file.
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	resp2, _ := http.Get(n.url + "/.well-known/jwks.json")
	data, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if err := os.WriteFile(jwksFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"token", "verify", "--jwks", jwksFile, rep.Token}, nil, nil, &out, io.Discard); err != nil {
		t.Fatalf("token verify: %v", err)
	}
	if !strings.Contains(out.String(), "cus_ada") {
		t.Fatalf("token verify printed %s", out.String())
	}
	tampered := rep.Token[:len(rep.Token)-4] + "AAAA"
	if err := run(ctx, []string{"token", "verify", "--jwks", jwksFile, tampered}, nil, nil, io.Discard, io.Discard); err == nil {
		t.Fatal("token verify accepted a tampered token")
	}
}

// The server's logs never contain what a caller keyed, the token, or a full phone number.
func TestServerLogsHoldNoSecrets(t *testing.T) {
	n := startNode(t, nil)
	for _, c := range kba.DemoDirectory().Customers() {
		if err, out := n.callCLI(t, "--customer", c.ID); err != nil {
			t.Fatalf("%s: %v\n%s", c.ID, err, out)
		}
		n.callCLI(t, "--customer", c.ID, "--answers", "ask_dob=01011990")
	}
	logs := n.logs.String()
	if !strings.Contains(logs, "call ended") {
		t.Fatal("no call logs captured")
	}
	// Ids, hashes, keys and clocks are random digits and would match a 4-digit answer by
	// chance: blank those fields' values before scanning.
	logs = regexp.MustCompile(`"(ts|call|stream|jti|head|kid|duration|request_id|file|addr|remote|http|agent_conn)":("[^"]*"|[0-9.e+-]+)`).
		ReplaceAllString(logs, `"$1":_`)
	for _, c := range kba.DemoDirectory().Customers() {
		for _, s := range append([]string{c.Account, c.Zip, c.SSNLast4, c.PIN, kba.AnswerDigits(c, "dob"), "01011990"}, c.Phones...) {
			if strings.Contains(logs, s) {
				t.Errorf("server logs contain %s's value %q", c.ID, s)
			}
		}
	}
	if strings.Contains(logs, "eyJ") {
		t.Error("server logs contain a JWT")
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	n := startNode(t, nil)
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "callproof_live_calls"} {
		resp, err := http.Get(n.url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
}

func TestAgentStreamRequiresKey(t *testing.T) {
	n := startNode(t, nil)
	_, _, err := watchAgent(context.Background(), n.url, "wrong-key-0123456789", "CA1")
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong agent key: %v", err)
	}
}

func TestConfigLayers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "callproof.yaml")
	os.WriteFile(file, []byte("http: 127.0.0.1:9000\ndata: "+dir+"\ndirectory: /etc/dir.yaml\nagent_keys: [\"from-file-0123456789\"]\ntoken_lifetime: 2m\n"), 0o600)
	env := map[string]string{"CALLPROOF_HTTP": "127.0.0.1:9001", "CALLPROOF_AGENT_KEYS": "from-env-0123456789"}
	cfg, err := parseServerFlags(false, []string{"--config", file, "--http", "127.0.0.1:9002"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP != "127.0.0.1:9002" || cfg.Data != dir || cfg.TokenLifetime != 2*time.Minute || len(cfg.AgentKeys) != 2 || cfg.LogFormat != "json" {
		t.Fatalf("config %+v", cfg)
	}
	cfg, err = parseServerFlags(false, []string{"--config", file}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || cfg.HTTP != "127.0.0.1:9001" {
		t.Fatalf("env should override the file: %+v %v", cfg.HTTP, err)
	}
	os.WriteFile(file, []byte("htp: typo\n"), 0o600)
	if _, err := parseServerFlags(false, []string{"--config", file}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("unknown config key accepted")
	}
	if _, err := parseServerFlags(false, nil, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("serve without data, directory or agent keys accepted")
	}
	if _, err := parseServerFlags(true, []string{"--audiosocket", "not-an-address"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("a bad listen address was accepted")
	}
}

// A caller who answers while each question is still playing in real time interrupts it: the
// server clears Twilio's queue and counts the digit.
func TestCallBargeInRealtime(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time call takes about 10 s")
	}
	n := startNode(t, nil)
	err, out := n.callCLI(t, "--customer", "cus_ben", "--realtime", "--barge-in")
	if err != nil {
		t.Fatalf("call: %v\n%s", err, out)
	}
	if !strings.Contains(n.logs.String(), `"barge_ins":`) || strings.Contains(n.logs.String(), `"barge_ins":0`) {
		t.Fatalf("no barge-in counted in the call summary:\n%s", n.logs.String())
	}
}

// --directory replaces the demo directory.
func TestDirectoryFlagReplacesDemo(t *testing.T) {
	file := filepath.Join(t.TempDir(), "customers.yaml")
	os.WriteFile(file, []byte(`customers:
  - id: cus_zoe
    name: Zoe Park
    account: "77001122"
    phones: ["+13125550142"]
    dob: "1990-02-03"
    zip: "60601"
    ssn_last4: "1357"
    pin: "8642"
    last_payment_cents: 4999
`), 0o600)
	n := startNode(t, func(c *Config) { c.Directory = file })
	if err, out := n.callCLI(t, "--customer", "cus_zoe", "--directory", file); err != nil {
		t.Fatalf("operator's customer not verified: %v\n%s", err, out)
	}
	if err, out := n.callCLI(t, "--customer", "cus_ada"); err == nil || !strings.Contains(out, "outcome: not_verified") {
		t.Fatalf("demo customer verified against an operator directory: %v\n%s", err, out)
	}
}

func TestKeygenWritesUsableKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.pem")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"keygen", "--out", path}, nil, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "kid ") {
		t.Fatalf("keygen printed %q", out.String())
	}
	if err := run(context.Background(), []string{"keygen", "--out", path}, nil, nil, io.Discard, io.Discard); err == nil {
		t.Fatal("keygen overwrote an existing key")
	}
	n := startNode(t, func(c *Config) { c.SigningKeyFile = path })
	if err, out := n.callCLI(t, "--customer", "cus_ada"); err != nil {
		t.Fatalf("call with the generated key: %v\n%s", err, out)
	}
}

// One address opening streams faster than the limit gets 429 before any upgrade.
func TestStreamRateLimitPerAddress(t *testing.T) {
	n := startNode(t, func(c *Config) { c.StreamsPerMinute, c.StreamsBurst = 1, 2 })
	codes := []int{}
	for i := 0; i < 3; i++ {
		resp, err := http.Get(n.url + "/v1/twilio")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] == http.StatusTooManyRequests || codes[1] == http.StatusTooManyRequests || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("status codes %v: want the third refused with 429", codes)
	}
}

// A whole verification through each platform dialect the simulated caller speaks, with digits
// as the platform's events and as in-band tones.
func TestCallEveryPlatform(t *testing.T) {
	n := startNode(t, nil)
	for _, platform := range simPlatforms {
		modes := []string{"events"}
		switch platform {
		case "twilio", "asterisk", "webrtc", "freeswitch": // freeswitch has no digit events: tones only
			modes = []string{"inband", "events"}
		}
		if platform == "freeswitch" {
			modes = modes[:1]
		}
		for _, mode := range modes {
			t.Run(platform+"/"+mode, func(t *testing.T) {
				args := []string{"--platform", platform, "--dtmf", mode, "--customer", "cus_ada"}
				if platform != "twilio" { // paced platforms: answer as each question starts
					args = append(args, "--barge-in")
				}
				err, out := n.callCLI(t, args...)
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if !strings.Contains(out, "outcome: verified") || !strings.Contains(out, "token: signature verified") {
					t.Fatalf("output:\n%s", out)
				}
			})
		}
	}
}

// callproof dtmf finds the digits sox writes into a WAV, with their timing.
func TestDTMFCommandOnSoxWAV(t *testing.T) {
	if _, err := exec.LookPath("sox"); err != nil {
		t.Fatal("sox not found: scripts/test.sh installs it")
	}
	dir := t.TempDir()
	wav := filepath.Join(dir, "digits.wav")
	// 1 (697+1209 Hz) for 100 ms, 80 ms of silence, # (941+1477 Hz) for 60 ms, as μ-law at 8 kHz.
	cmd := exec.Command("sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", wav,
		"synth", "0.1", "sine", "697", "sine", "1209", "remix", "1,2", "gain", "-n", "-10", ":",
		"synth", "0.08", "sine", "0", "gain", "-200", ":",
		"synth", "0.06", "sine", "941", "sine", "1477", "remix", "1,2", "gain", "-n", "-10", ":",
		"synth", "0.1", "sine", "0", "gain", "-200")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sox: %v\n%s", err, out)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"dtmf", wav}, nil, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var digits []string
	var starts, durs []int
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var start, dur int
		var d string
		if _, err := fmt.Sscanf(line, "%d %s %d", &start, &d, &dur); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		digits, starts, durs = append(digits, d), append(starts, start), append(durs, dur)
	}
	if strings.Join(digits, "") != "1#" {
		t.Fatalf("digits %v, want 1 #:\n%s", digits, out.String())
	}
	if abs(starts[0]) > 10 || abs(starts[1]-180) > 10 || abs(durs[0]-100) > 10 || abs(durs[1]-60) > 10 {
		t.Fatalf("timing off: starts %v durations %v", starts, durs)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// An authorized agent is verified for the customer with a passcode sent to the customer's
// contact on file (the demo inbox here); the token says so.
func TestCallAsAuthorizedAgent(t *testing.T) {
	n := startNode(t, nil)
	err, out := n.callCLI(t, "--customer", "cus_ada", "--request", "delete", "--answers", "agent_menu=2")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"prompt agent_menu", "prompt ask_otp", "outcome: verified", "amr [kba otp mfa sms]", "authorized agent"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	// The inbox answers this machine only.
	req, _ := http.NewRequest(http.MethodGet, n.url+"/v1/demo/inbox", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	rec := httptest.NewRecorder()
	n.app.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("inbox served to a remote address: %d", rec.Code)
	}
}

// Operators configure policies per request type; tables below the regulation's minimums are
// refused at start-up.
func TestPoliciesFromConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "callproof.yaml")
	os.WriteFile(file, []byte(`policies:
  delete: {level: reasonably-high, points: 3, factors: [dob, zip, ssn_last4, pin]}
dtmf_platforms: {twilio: events}
`), 0o600)
	cfg, err := parseServerFlags(true, []string{"--config", file, "--data", dir}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, func(c *Config) {
		c.Policies, c.DTMFPlatforms = cfg.Policies, cfg.DTMFPlatforms
		c.FirstDigitTimeout = 300 * time.Millisecond // the events-only case below waits out its questions
	})
	err, out := n.callCLI(t, "--customer", "cus_ada", "--request", "delete")
	if err != nil || !strings.Contains(out, "prompt ask_ssn_last4") || !strings.Contains(out, "acr urn:callproof:ccpa:reasonably-high") {
		t.Fatalf("delete under a stricter policy: %v\n%s", err, out)
	}
	// Twilio on events only: tones in the audio are not digits.
	if err, out := n.callCLI(t, "--customer", "cus_ada", "--dtmf", "inband"); err == nil {
		t.Fatalf("in-band digits accepted on a leg configured for events only:\n%s", out)
	}
	os.WriteFile(file, []byte("policies:\n  know_specific: {points: 1}\n"), 0o600)
	if _, err := parseServerFlags(true, []string{"--config", file, "--data", dir}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("a know_specific policy of one data point was accepted")
	}
}

// A policy that asks the authenticator code: the simulated caller computes it from the demo
// customer's secret, as the customer's app would.
func TestCallWithAuthenticatorCode(t *testing.T) {
	n := startNode(t, func(c *Config) {
		c.Policies = map[string]PolicyConfig{"know_categories": {Factors: []string{"totp", "dob", "zip"}}}
	})
	err, out := n.callCLI(t, "--customer", "cus_ada")
	if err != nil || !strings.Contains(out, "prompt ask_totp") || !strings.Contains(out, "data_points [dob totp]") && !strings.Contains(out, "data_points [totp dob]") {
		t.Fatalf("%v\n%s", err, out)
	}
}

// Every call leaves a record in the hash-chained audit log; `audit verify` checks the chain
// and finds a tampered line; `report ccpa` counts what the calls did; a verification reaches
// the CRM webhook, signed, with the token.
func TestAuditTrailReportAndCRMWebhook(t *testing.T) {
	got := make(chan []byte, 4)
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.VerifySignature([]byte("crm-secret-0123456789"), r.Header.Get("Callproof-Signature"), body, time.Now(), time.Minute); err != nil {
			t.Errorf("CRM webhook signature: %v", err)
		}
		got <- body
	}))
	defer crm.Close()
	n := startNode(t, func(c *Config) {
		c.CRMWebhookURLs, c.CRMWebhookSecret = []string{crm.URL}, "crm-secret-0123456789"
	})
	if err, out := n.callCLI(t, "--customer", "cus_ada"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	n.callCLI(t, "--customer", "cus_ben", "--answers", "ask_zip=00000")
	n.callCLI(t, "--customer", "cus_chen", "--request", "opt_out")
	select {
	case body := <-got:
		var ev struct{ Outcome, Token, ID string }
		if json.Unmarshal(body, &ev) != nil || ev.Outcome != "verified" || ev.Token == "" || ev.ID == "" {
			t.Fatalf("CRM event %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the CRM webhook never received the verification")
	}

	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metricsText), `callproof_crm_webhook_deliveries_total{state="enqueued"} 1`) ||
		!strings.Contains(string(metricsText), `callproof_crm_webhook_queued{state="dead"} 0`) {
		t.Fatalf("webhook metrics missing:\n%s", metricsText)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"audit", "verify", "--data", n.data}, nil, nil, &out, io.Discard); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	if !strings.Contains(out.String(), `"records":3`) && !strings.Contains(out.String(), `"Records":3`) {
		t.Fatalf("audit verify: %s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"report", "ccpa", "--year", fmt.Sprint(time.Now().UTC().Year()), "--json", "--data", n.data}, nil, nil, &out, io.Discard); err != nil {
		t.Fatalf("report: %v", err)
	}
	rep := out.String()
	for _, want := range []string{`"know_categories"`, `"opt_out"`} {
		if !strings.Contains(rep, want) {
			t.Fatalf("report lacks %s:\n%s", want, rep)
		}
	}
	// Tamper with the second record: verification names line 2.
	path := filepath.Join(n.data, "audit.jsonl")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(data), "\n", 3)
	lines[1] = strings.Replace(lines[1], `"not_verified"`, `"verified"`, 1)
	tampered := filepath.Join(t.TempDir(), "tampered.jsonl")
	os.WriteFile(tampered, []byte(strings.Join(lines, "\n")), 0o600)
	err = run(context.Background(), []string{"audit", "verify", "--file", tampered}, nil, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("tampered audit log: %v", err)
	}
	for _, s := range []string{"40001234", "94107", "6789", "+14155550100", "eyJ"} {
		if strings.Contains(string(data), s) {
			t.Fatalf("the audit log holds a caller's value or a token (%q)", s)
		}
	}
}

// The first termination signal drains: /readyz and new streams answer 503, the live call
// finishes and is verified, and Serve returns nil.
func TestDrainLetsLiveCallsFinish(t *testing.T) {
	cfg := Config{HTTP: "127.0.0.1:0", Data: t.TempDir(), AgentKeys: []string{testAgentKey}}
	if err := cfg.finish(true); err != nil {
		t.Fatal(err)
	}
	cfg.AudioSocket, cfg.SIP = "", ""
	app, err := NewApp(cfg, nil, true, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	drain := make(chan struct{})
	ctx := context.WithValue(context.Background(), drainKey{}, (<-chan struct{})(drain))
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	callDone := make(chan string, 1)
	go func() {
		var out bytes.Buffer
		err := run(context.Background(), []string{"call", "--server", base, "--agent-key", testAgentKey,
			"--customer", "cus_ada", "--realtime", "--barge-in"}, nil, nil, &out, &out)
		callDone <- fmt.Sprint(err) + "\n" + out.String()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for app.live.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if app.live.Load() == 0 {
		t.Fatal("the call never started")
	}
	close(drain)
	time.Sleep(100 * time.Millisecond)
	for path, want := range map[string]int{"/readyz": 503, "/v1/twilio": 503, "/.well-known/jwks.json": 200} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("%s during drain: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s during drain: %d, want %d", path, resp.StatusCode, want)
		}
	}
	out := <-callDone
	if !strings.Contains(out, "outcome: verified") {
		t.Fatalf("the live call did not finish verified during the drain:\n%s", out)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}
}
