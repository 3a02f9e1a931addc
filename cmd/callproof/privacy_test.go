package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/redis/redistest"
)

// TestPrivacyEndToEnd seeds a directory with fresh random answers, places calls that pass,
// fail, lock out and use passcodes and authenticator codes over several platforms against a
// node whose state lives in Redis, and then looks for every value a caller keyed or was sent
// (right and wrong answers, passcodes, full calling numbers, the tokens issued, the agent key
// and the webhook secret) in every place the server writes to: each log line (debug level),
// /metrics, each agent WebSocket message, each CRM webhook request, each file in the data
// directory (audit log included) and each Redis key with its value, read by type. Tokens
// belong in agent messages and CRM webhook bodies; nothing else belongs anywhere. It also
// checks that the calling numbers the agent sees and the logs hold are masked.
func TestPrivacyEndToEnd(t *testing.T) {
	redisAddr := redistest.Addr(t)
	sec := &secretSet{}
	agentKey := sec.add("agent key", "ak_priv_"+randHex(t, 16), false)
	crmSecret := sec.add("CRM webhook secret", "whsec_"+randHex(t, 16), false)

	custs := map[string]*privCustomer{}
	var yaml strings.Builder
	yaml.WriteString("customers:\n")
	for _, id := range []string{"p_verified", "p_sip", "p_agent", "p_totp", "p_locked", "p_badcode"} {
		c := newPrivCustomer(t, sec, id)
		custs[id] = c
		yaml.WriteString(c.yaml())
	}
	dirFile := filepath.Join(t.TempDir(), "customers.yaml")
	if err := os.WriteFile(dirFile, []byte(yaml.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	crm := newCRMReceiver(t)
	n, stop := launchNode(t, func(c *Config) {
		c.Directory = dirFile
		c.Redis = "redis://" + redisAddr
		c.NodeName = "privacy-" + randHex(t, 4)
		c.AgentKeys = []string{agentKey, testAgentKey} // redeem uses testAgentKey
		c.CRMWebhookURLs, c.CRMWebhookSecret = []string{crm.srv.URL}, crmSecret
		// Every question asks a long answer where the factor allows one (a payment of 15
		// digits, a PIN of 8), so that a leak cannot hide among random ids.
		c.Policies = map[string]PolicyConfig{
			"know_categories": {Factors: []string{"last_payment", "pin", "dob"}},
			"know_specific":   {Factors: []string{"last_payment", "pin", "dob", "zip"}},
			"delete":          {Factors: []string{"pin", "last_payment", "dob"}},
			"account_service": {Factors: []string{"totp", "last_payment", "pin"}},
		}
	}, io.Discard)
	agentMsgs := captureAgent(t, n.url, agentKey)

	calls := []*privCall{
		{name: "verified over Twilio", customer: "p_verified", platform: "twilio", fromFile: true, want: "verified"},
		{name: "verified over SIP, know_specific", customer: "p_sip", platform: "sip", request: "know_specific", want: "verified"},
		{name: "verified over AudioSocket with an authenticator code", customer: "p_totp", platform: "audiosocket",
			request: "account_service", fromFile: true, want: "verified"},
		{name: "authorized agent with the passcode", customer: "p_agent", platform: "twilio", request: "delete",
			answers: map[string]string{"agent_menu": "2"}, passcode: true, want: "verified"},
		{name: "authorized agent with a wrong passcode", customer: "p_badcode", platform: "twilio", request: "delete",
			answers:  map[string]string{"agent_menu": "2", "ask_otp": sec.add("wrong passcode", randDigits(t, 6), false) + "#"},
			passcode: true, want: "not_verified"},
		{name: "unknown account", platform: "twilio", want: "not_verified", answers: map[string]string{
			"ask_account":      sec.add("unknown account number", randDigits(t, 16), false) + "#",
			"ask_last_payment": sec.add("unknown account's payment", randDigits(t, 15), false) + "#",
			"ask_pin":          sec.add("unknown account's PIN", randDigits(t, 8), false) + "#",
		}},
	}
	for i := range 3 {
		calls = append(calls, &privCall{name: fmt.Sprintf("wrong payment %d", i+1), customer: "p_locked", platform: "twilio",
			want: "not_verified", answers: map[string]string{
				"ask_last_payment": sec.add(fmt.Sprintf("wrong payment %d", i+1), randDigits(t, 15), false) + "#"}})
	}
	calls = append(calls, &privCall{name: "right answers after three failures", customer: "p_locked", platform: "twilio", want: "locked_out"})
	for _, c := range calls {
		if c.fromFile {
			c.from = custs[c.customer].phone
		} else {
			c.from = sec.addPhone("calling number of "+c.name, randPhone(t))
		}
	}

	// The paced platforms take seconds per prompt: they run beside the Twilio calls, which run
	// in order (the lockout needs its three failures first).
	var wg sync.WaitGroup
	for _, c := range calls {
		if c.platform == "twilio" {
			continue
		}
		wg.Go(func() { c.place(n, dirFile, agentKey) })
	}
	for _, c := range calls {
		if c.platform == "twilio" {
			c.place(n, dirFile, agentKey)
		}
	}
	wg.Wait()
	var tokens []string
	for _, c := range calls {
		if c.err != nil || c.rep == nil || c.rep.Outcome != c.want {
			outcome := ""
			if c.rep != nil {
				outcome = c.rep.Outcome
			}
			t.Fatalf("%s: outcome %q, want %q (%v)\n%s", c.name, outcome, c.want, c.err, c.out.String())
		}
		for _, p := range c.rep.Prompts { // what the caller keyed: the answers to the questions asked
			if v := strings.TrimSuffix(c.keyed[p], "#"); len(v) >= 6 {
				sec.add(fmt.Sprintf("%s: answer to %s", c.name, p), v, false)
			} else if v != "" {
				t.Fatalf("%s: %s was asked; its answer %q is too short to look for", c.name, p, v)
			}
		}
		if c.passcode {
			codes := inboxCodes(t, n.url, c.rep.CallSid)
			if len(codes) == 0 {
				t.Fatalf("%s: no passcode in the demo inbox", c.name)
			}
			for _, code := range codes {
				sec.add("passcode sent on "+c.name, code, false)
			}
		}
		if c.want == "verified" {
			if c.rep.Token == "" || c.rep.TokenErr != nil {
				t.Fatalf("%s: token %q: %v", c.name, c.rep.Token, c.rep.TokenErr)
			}
			tokens = append(tokens, c.rep.Token)
			sec.add("token issued on "+c.name, c.rep.Token, true)
			sig := c.rep.Token[strings.LastIndexByte(c.rep.Token, '.')+1:]
			sec.add("token signature of "+c.name, sig, true)
		}
	}
	if code := redeem(t, n.url, tokens[0]); code != http.StatusOK {
		t.Fatalf("redeem: %d", code)
	}
	if code := redeem(t, n.url, tokens[0]); code != http.StatusConflict {
		t.Fatalf("second redemption: %d, want 409", code)
	}
	// Read Redis right after the calls (CRM deliveries may still be queued for a retry), and
	// again once the node has stopped.
	redisEarly := dumpRedis(t, redisAddr)
	crm.waitDelivered(t, len(tokens)-1) // the first delivery is dead-lettered
	metricsText := httpGetText(t, n.url+"/metrics")
	stop() // ends the hub, the queue and the audit writer: every record is on disk
	redisLate := dumpRedis(t, redisAddr)

	// The sinks, with whether a token may appear in each.
	var blobs []blob
	logText := n.logs.String()
	for i, line := range strings.Split(logText, "\n") {
		if line != "" {
			var origin struct{ Logger, Msg string }
			_ = json.Unmarshal([]byte(line), &origin)
			blobs = append(blobs, blob{where: fmt.Sprintf("log line %d (%s: %q)", i+1, origin.Logger, origin.Msg), text: line})
		}
	}
	blobs = append(blobs, blob{where: "/metrics", text: metricsText, metrics: true})
	for i, m := range agentMsgs() {
		blobs = append(blobs, blob{where: fmt.Sprintf("agent message %d", i+1), text: m, tokensAllowed: true})
	}
	for i, b := range crm.requests() {
		blobs = append(blobs, blob{where: fmt.Sprintf("CRM webhook request %d", i+1), text: b, tokensAllowed: true})
	}
	files := 0
	err := filepath.WalkDir(n.data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(n.data, path)
		files++
		blobs = append(blobs, blob{where: "data file " + rel, text: string(data)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for when, dump := range map[string]map[string]string{"after the calls": redisEarly, "at the end": redisLate} {
		for _, k := range sortedKeys(dump) {
			blobs = append(blobs, blob{where: "Redis key " + k + " (" + when + ")", text: k + "\n" + dump[k]})
		}
	}

	// The scan must have something to scan: each sink holds what the calls produced.
	auditFile, _ := os.ReadFile(filepath.Join(n.data, "audit.jsonl"))
	for what, ok := range map[string]bool{
		"logs of every call":                         strings.Count(logText, "call ended") >= len(calls),
		"agent verified messages with tokens":        strings.Count(strings.Join(agentMsgs(), "\n"), `"type":"verified"`) >= len(tokens),
		"CRM webhook requests, retried":              len(crm.requests()) > len(tokens),
		"an audit record per call":                   bytes.Count(auditFile, []byte("\n")) >= len(calls),
		"metrics of the calls":                       strings.Contains(metricsText, `outcome="locked_out"`),
		"Redis agent streams":                        hasKeyPrefix(redisLate, "callproof:{agent}:call:"),
		"Redis attempt counters":                     hasKeyPrefix(redisLate, "callproof:attempts:"),
		"Redis replay markers":                       hasKeyPrefix(redisLate, "callproof:replay:"),
		"the Redis audit stream":                     hasKeyPrefix(redisLate, "callproof:{audit}:records"),
		"the Redis CRM queue (a dead-lettered item)": hasKeyPrefix(redisLate, "callproof:{webhook}:items"),
	} {
		if !ok {
			t.Errorf("nothing to scan: %s missing", what)
		}
	}

	leaks := scanForSecrets(blobs, sec.list)
	for _, l := range leaks {
		t.Errorf("LEAK: %s", l)
	}
	if len(leaks) > 0 {
		t.Fatalf("%d leaks of %d secrets", len(leaks), len(sec.list))
	}

	// Calling numbers appear, masked, where the design shows them.
	msgs := agentMsgs()
	for _, c := range calls {
		masked := media.MaskPhone(c.from)
		found := false
		for _, raw := range msgs {
			var m sessions.AgentMessage
			if json.Unmarshal([]byte(raw), &m) == nil && m.Type == sessions.TypeCall && m.State == sessions.StateStarted && m.Call == c.rep.CallSid {
				found = true
				if m.Caller != masked {
					t.Errorf("%s: the agent saw caller %q, want %q", c.name, m.Caller, masked)
				}
			}
		}
		if !found {
			t.Errorf("%s: no call started message for %s", c.name, c.rep.CallSid)
		}
		if !strings.Contains(logText, `"caller":"`+masked+`"`) {
			t.Errorf("%s: no log line shows the caller masked as %s", c.name, masked)
		}
	}
	t.Logf("%d secrets, none found in %d log lines, %d agent messages, %d CRM requests, %d data files, %d+%d Redis keys, /metrics",
		len(sec.list), strings.Count(logText, "\n"), len(msgs), len(crm.requests()), files, len(redisEarly), len(redisLate))
}

// secret is one value a test call put into the server (or the server sent the caller) that
// must never come back out in clear.
type secret struct {
	what  string
	value string
	// short values (under 9 characters: PINs, keyed dates, passcodes) would turn up by chance
	// among random ids, counters and clocks; they are looked for only as a whole run of
	// digits, in text whose ids, hashes, addresses and clocks have been blanked.
	short bool
	// token is true for the tokens issued: they are what agent messages and CRM webhook
	// bodies carry, and a leak anywhere else.
	token bool
}

type secretSet struct {
	mu   sync.Mutex
	list []secret
}

// add records value as a secret and returns it.
func (s *secretSet) add(what, value string, token bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.list {
		if o.value == value {
			return value
		}
	}
	s.list = append(s.list, secret{what: what, value: value, short: len(value) < 9, token: token})
	return value
}

// addPhone records an E.164 number and its national form (in case something drops the +1).
func (s *secretSet) addPhone(what, number string) string {
	s.add(what, number, false)
	s.add(what+", national", strings.TrimPrefix(number, "+1"), false)
	return number
}

// privCustomer is a directory record made of fresh random values.
type privCustomer struct {
	id, account, phone, email, dob, zip, ssn, pin, payment, totp string
}

func newPrivCustomer(t *testing.T, sec *secretSet, id string) *privCustomer {
	t.Helper()
	year := 1930 + randInt(t, 70)
	month, day := 1+randInt(t, 12), 1+randInt(t, 28)
	c := &privCustomer{
		id:      id,
		account: sec.add(id+" account number", randDigits(t, 16), false),
		phone:   sec.addPhone(id+" phone on file", randPhone(t)),
		email:   sec.add(id+" email on file", "zq"+randHex(t, 8)+"@example.com", false),
		dob:     sec.add(id+" date of birth", fmt.Sprintf("%04d-%02d-%02d", year, month, day), false),
		zip:     randDigits(t, 5),
		ssn:     randDigits(t, 4),
		pin:     sec.add(id+" PIN", randDigits(t, 8), false),
		payment: sec.add(id+" last payment", randDigits(t, 15), false),
		totp:    sec.add(id+" TOTP secret", randBase32(t, 32), false),
	}
	sec.add(id+" date of birth as keyed", fmt.Sprintf("%02d%02d%04d", month, day, year), false)
	sec.add(id+" date of birth as digits", fmt.Sprintf("%04d%02d%02d", year, month, day), false)
	return c
}

func (c *privCustomer) yaml() string {
	return fmt.Sprintf(`  - id: %s
    name: Privacy Test
    account: "%s"
    phones: ["%s"]
    emails: ["%s"]
    dob: "%s"
    zip: "%s"
    ssn_last4: "%s"
    pin: "%s"
    last_payment_cents: %s
    totp_secret: "%s"
`, c.id, c.account, c.phone, c.email, c.dob, c.zip, c.ssn, c.pin, c.payment, c.totp)
}

// privCall is one simulated call of the privacy test.
type privCall struct {
	name     string
	customer string // "" for an account that is not in the directory
	platform string
	request  string
	fromFile bool // call from the customer's number on file
	from     string
	answers  map[string]string // overrides of the customer's answers
	passcode bool              // a passcode is sent to the customer
	want     string

	keyed map[string]string // every answer the caller had ready, by prompt
	rep   *callReport
	out   bytes.Buffer
	err   error
}

func (c *privCall) place(n *node, dirFile, agentKey string) {
	o := callOptions{server: n.url, platform: c.platform, customer: c.customer, directory: dirFile, agentKey: agentKey,
		request: c.request, from: c.from, to: "+18005550199", verstat: "TN-Validation-Passed-A", dtmf: "events",
		bargeIn: c.platform != "twilio", issuer: "callproof", audience: "callproof-agent", sip: n.sip,
		audiosocket: n.audiosocket, registrationKey: agentKey}
	if c.customer == "" {
		o.answers = "ask_account=" + c.answers["ask_account"]
	}
	answers, _, err := buildAnswers(o)
	if err != nil {
		c.err = err
		return
	}
	for k, v := range c.answers {
		answers[k] = v
	}
	c.keyed = map[string]string{}
	for k, v := range answers {
		if strings.HasPrefix(k, "ask_") {
			c.keyed[k] = v
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c.rep, c.err = placeCall(ctx, o, answers, &c.out)
}

// inboxCodes returns the passcodes the demo inbox holds for call.
func inboxCodes(t *testing.T, base, call string) []string {
	t.Helper()
	var body struct {
		Messages []struct {
			Code string `json:"code"`
		} `json:"messages"`
	}
	if err := json.Unmarshal([]byte(httpGetText(t, base+"/v1/demo/inbox?call="+call)), &body); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, m := range body.Messages {
		codes = append(codes, m.Code)
	}
	return codes
}

func httpGetText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(data)
}

// captureAgent subscribes to every call on the agent WebSocket and keeps each message as
// received; the returned func lists them so far.
func captureAgent(t *testing.T, base, key string) func() []string {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+key)
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/agent", h)
	if err != nil {
		t.Fatalf("agent dial: %v", err)
	}
	if err := conn.WriteJSON(map[string]any{"type": "subscribe", "all": true}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var msgs []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, string(data))
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), msgs...)
	}
}

// crmReceiver is a CRM endpoint that keeps every request (headers and body). It refuses the
// first delivery for good (the queue dead-letters it and keeps it) and every other delivery's
// first attempt with 503, so that deliveries sit in the queue for a while.
type crmReceiver struct {
	srv *httptest.Server

	mu        sync.Mutex
	reqs      []string
	seen      map[string]bool
	delivered int
}

func newCRMReceiver(t *testing.T) *crmReceiver {
	r := &crmReceiver{seen: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var head strings.Builder
		_ = req.Header.Write(&head)
		key := req.Header.Get("Idempotency-Key")
		r.mu.Lock()
		defer r.mu.Unlock()
		r.reqs = append(r.reqs, req.Method+" "+req.URL.String()+"\n"+head.String()+"\n"+string(body))
		switch {
		case len(r.seen) == 0:
			r.seen[key] = true
			w.WriteHeader(http.StatusUnprocessableEntity)
		case !r.seen[key]:
			r.seen[key] = true
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			r.delivered++
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *crmReceiver) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...)
}

func (r *crmReceiver) waitDelivered(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		got := r.delivered
		r.mu.Unlock()
		if got >= want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the CRM received %d deliveries, want %d", r.delivered, want)
}

// blob is one piece of what the server wrote, and where.
type blob struct {
	where         string
	text          string
	tokensAllowed bool
	metrics       bool // Prometheus text: short secrets are looked for in names and labels only
}

// scanForSecrets returns one line per secret found where it must not be.
func scanForSecrets(blobs []blob, secrets []secret) []string {
	var leaks []string
	for _, b := range blobs {
		var quiet string // b.text with ids, hashes, addresses and clocks blanked
		var found []string
		for _, s := range secrets {
			if s.token && b.tokensAllowed || slices.ContainsFunc(found, func(f string) bool { return strings.Contains(f, s.value) }) {
				continue // allowed here, or part of a secret already reported here (a token's signature)
			}
			text, i := b.text, -1
			if s.short {
				if quiet == "" {
					quiet = blankNoise(b.text, b.metrics)
				}
				text, i = quiet, digitRun(quiet, s.value)
			} else {
				i = strings.Index(b.text, s.value)
			}
			if i < 0 {
				continue
			}
			found = append(found, s.value)
			end := i + len(s.value)
			excerpt := strings.ReplaceAll(text[max(0, i-60):i]+abbrev(s.value)+text[end:min(len(text), end+40)], "\n", "⏎")
			leak := fmt.Sprintf("%s (%s) in %s: …%s…", s.what, abbrev(s.value), b.where, excerpt)
			if s.token && strings.Contains(b.where, "{agent}:call:") {
				leak += " (the agent log seals tokens when Redis is opened with redis.WithSealKey)"
			}
			leaks = append(leaks, leak)
		}
	}
	return leaks
}

func abbrev(s string) string {
	if len(s) > 24 {
		return s[:20] + "…"
	}
	return s
}

// digitRun returns where digits occurs in s as a whole run (no digit just before or after),
// or -1.
func digitRun(s, digits string) int {
	isDigit := func(b byte) bool { return b >= '0' && b <= '9' }
	for from := 0; ; {
		j := strings.Index(s[from:], digits)
		if j < 0 {
			return -1
		}
		j += from
		end := j + len(digits)
		if (j == 0 || !isDigit(s[j-1])) && (end == len(s) || !isDigit(s[end])) {
			return j
		}
		from = j + 1
	}
}

var noise = []*regexp.Regexp{
	regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?`), // clocks
	regexp.MustCompile(`\d{10,}-\d+`),                                         // Redis stream and agent event ids
	regexp.MustCompile(`[0-9A-Za-z_+/=-]{20,}`),                               // ids, hashes, keys, base64
	regexp.MustCompile(`\b[0-9a-fA-F]{12,}\b`),                                // shorter hex
	regexp.MustCompile(`(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?|\[[0-9a-f:]+\]:\d+`), // addresses and ports
	regexp.MustCompile(`\d+\.\d+(?:[eE][+-]?\d+)?`),                           // durations, seconds, sizes
}

// metricValue is a Prometheus sample's value at the end of its line.
var metricValue = regexp.MustCompile(`(?m)\s\S+$`)

// blankNoise blanks what holds random or clock digits, so that a short secret found in the
// rest is a leak and not a coincidence.
func blankNoise(s string, metrics bool) string {
	if metrics {
		s = metricValue.ReplaceAllString(s, " _")
	}
	for _, re := range noise {
		s = re.ReplaceAllString(s, "_")
	}
	return s
}

// dumpRedis reads every key of the server at addr with its value, by type: strings, hashes,
// lists, sets, sorted sets (with scores) and streams (every entry). It speaks RESP itself:
// the Redis client stays inside sessions/redis.
func dumpRedis(t *testing.T, addr string) map[string]string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	try := func(args ...string) (any, error) {
		var b bytes.Buffer
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := c.Write(b.Bytes()); err != nil {
			t.Fatalf("redis write: %v", err)
		}
		return readRESP(r)
	}
	do := func(args ...string) any {
		v, err := try(args...)
		if err != nil {
			t.Fatalf("redis %s: %v", args[0], err)
		}
		return v
	}
	var keys []string
	for cursor := "0"; ; {
		res, ok := do("SCAN", cursor, "COUNT", "1000").([]any)
		if !ok || len(res) != 2 {
			t.Fatalf("redis SCAN: %v", res)
		}
		cursor, _ = res[0].(string)
		for _, k := range res[1].([]any) {
			keys = append(keys, k.(string))
		}
		if cursor == "0" {
			break
		}
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		typ, _ := do("TYPE", k).(string)
		var v any
		var err error
		switch typ {
		case "none": // expired since the SCAN
			continue
		case "string":
			v, err = try("GET", k)
		case "hash":
			v, err = try("HGETALL", k)
		case "list":
			v, err = try("LRANGE", k, "0", "-1")
		case "set":
			v, err = try("SMEMBERS", k)
		case "zset":
			v, err = try("ZRANGE", k, "0", "-1", "WITHSCORES")
		case "stream":
			v, err = try("XRANGE", k, "-", "+")
		default:
			err = fmt.Errorf("type %s: the scan cannot read it", typ)
		}
		if err != nil {
			// On the shared test server other packages' keys come and go; ours must read.
			if strings.HasPrefix(k, "callproof:") {
				t.Fatalf("redis key %s: %v", k, err)
			}
			continue
		}
		var b strings.Builder
		b.WriteString(typ)
		flattenRESP(&b, v)
		out[k] = b.String()
	}
	return out
}

// readRESP reads one RESP2 reply: a string, an int64, nil, an error or a []any.
func readRESP(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, errors.New(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], err = readRESP(r); err != nil {
				return nil, err
			}
		}
		return arr, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

func flattenRESP(b *strings.Builder, v any) {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			flattenRESP(b, e)
		}
	case nil:
	default:
		fmt.Fprintf(b, "\n%v", v)
	}
}

func hasKeyPrefix(m map[string]string, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func randInt(t *testing.T, n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		t.Fatal(err)
	}
	return int(v.Int64())
}

// randDigits returns n random digits, the first not 0, so that numeric fields keep them all.
func randDigits(t *testing.T, n int) string {
	b := []byte{byte('1' + randInt(t, 9))}
	for len(b) < n {
		b = append(b, byte('0'+randInt(t, 10)))
	}
	return string(b)
}

// randPhone returns a random North American number in E.164.
func randPhone(t *testing.T) string {
	return "+1" + string(rune('2'+randInt(t, 8))) + randDigits(t, 10)[1:]
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func randBase32(t *testing.T, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[randInt(t, len(alphabet))]
	}
	return string(b)
}
