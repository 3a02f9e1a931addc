package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/kba"
	"github.com/callproof/callproof/media/audiosocket"
	"github.com/callproof/callproof/prompts"
	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/token"
)

// callOptions are the simulated caller's settings.
type callOptions struct {
	server    string
	platform  string
	customer  string
	directory string
	answers   string
	agentKey  string
	request   string
	lang      string
	from, to  string
	verstat   string
	dtmf      string
	realtime  bool
	bargeIn   bool
	timeout   time.Duration
	authToken string
	issuer    string
	audience  string
	dataDir   string

	asAgent          bool
	sip              string
	audiosocket      string
	registrationKey  string
	platformUser     string
	platformPassword string
}

// callReport is what a simulated call observed.
type callReport struct {
	CallSid  string
	Prompts  []string
	Outcome  string
	Agent    []sessions.AgentMessage
	Token    string
	Verified *token.Verified
	TokenErr error
}

func runCall(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o callOptions
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.server, "server", "http://127.0.0.1:8080", "server base URL")
	fs.StringVar(&o.platform, "platform", "twilio", "platform dialect to speak: "+strings.Join(simPlatforms, ", "))
	fs.StringVar(&o.sip, "sip", "127.0.0.1:5060", "SIP address (--platform sip)")
	fs.StringVar(&o.audiosocket, "audiosocket", "127.0.0.1:9092", "AudioSocket address (--platform audiosocket)")
	fs.StringVar(&o.registrationKey, "registration-key", "", "key for registering AudioSocket calls (default: the agent key)")
	fs.StringVar(&o.platformUser, "platform-user", "", "HTTP Basic user the platform presents (asterisk)")
	fs.StringVar(&o.platformPassword, "platform-password", "", "HTTP Basic password the platform presents (default: CALLPROOF_PLATFORM_PASSWORD)")
	fs.StringVar(&o.customer, "customer", "", "customer id whose answers to give (from --directory)")
	fs.StringVar(&o.directory, "directory", "", "customer directory YAML (default: the demo directory)")
	fs.StringVar(&o.answers, "answers", "", "answers by prompt id, overriding the customer's: ask_dob=01011990,ask_zip=94107")
	fs.StringVar(&o.agentKey, "agent-key", "", "agent key to watch the agent stream (default: CALLPROOF_AGENT_KEY or the demo's key file)")
	fs.StringVar(&o.request, "request", "", "request type passed as a stream parameter (default: chosen in the menu: know_categories)")
	fs.StringVar(&o.lang, "lang", "", "language passed as a stream parameter, en-US or es-US (default: chosen in the menu: en-US)")
	fs.StringVar(&o.from, "from", "", "caller number (default: the customer's first phone)")
	fs.StringVar(&o.to, "to", "+18005550199", "dialled number")
	fs.StringVar(&o.verstat, "verstat", "TN-Validation-Passed-A", "STIR/SHAKEN verstat the platform reports")
	fs.StringVar(&o.dtmf, "dtmf", "events", "how digits are sent: events (the platform's digit events) or inband (tones in the audio)")
	fs.BoolVar(&o.asAgent, "as-agent", false, "call as an authorized agent for the customer (verified with a passcode to the customer's contact on file, read from the demo inbox)")
	fs.BoolVar(&o.realtime, "realtime", false, "play prompts out in real time before acknowledging marks")
	fs.BoolVar(&o.bargeIn, "barge-in", false, "answer as soon as a question starts, interrupting it (with --realtime)")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "give up after this long")
	fs.StringVar(&o.authToken, "auth-token", "", "Twilio auth token to sign the stream request with (default: CALLPROOF_TWILIO_AUTH_TOKEN)")
	fs.StringVar(&o.issuer, "issuer", "callproof", "expected token issuer")
	fs.StringVar(&o.audience, "audience", "callproof-agent", "expected token audience")
	fs.StringVar(&o.dataDir, "data", "", "the demo's data directory, to find its agent key")
	if err := fs.Parse(args); err != nil {
		return exitError{code: 2}
	}
	if !slices.Contains(simPlatforms, o.platform) {
		return exitError{code: 2, msg: fmt.Sprintf("call: platform %q: want one of %s", o.platform, strings.Join(simPlatforms, ", "))}
	}
	if o.platform == "freeswitch" {
		o.dtmf = "inband" // mod_audio_fork carries no digit events
	}
	if o.dtmf != "events" && o.dtmf != "inband" {
		return exitError{code: 2, msg: fmt.Sprintf("call: --dtmf %q: want events or inband", o.dtmf)}
	}
	if o.platformPassword == "" {
		o.platformPassword = getenv("CALLPROOF_PLATFORM_PASSWORD")
	}
	if o.authToken == "" {
		o.authToken = getenv("CALLPROOF_TWILIO_AUTH_TOKEN")
	}
	if o.agentKey == "" {
		o.agentKey = getenv("CALLPROOF_AGENT_KEY")
	}
	if o.agentKey == "" {
		dir := o.dataDir
		if dir == "" {
			dir = demoDataDir()
		}
		if data, err := os.ReadFile(filepath.Join(dir, agentKeyFile)); err == nil {
			o.agentKey = strings.TrimSpace(string(data))
		}
	}
	if o.registrationKey == "" {
		o.registrationKey = o.agentKey
	}
	answers, cust, err := buildAnswers(o)
	if err != nil {
		return exitError{code: 2, msg: "call: " + err.Error()}
	}
	if o.from == "" {
		o.from = "+15555550123"
		if cust != nil && len(cust.Phones) > 0 {
			o.from = cust.Phones[0]
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	rep, err := placeCall(ctx, o, answers, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "outcome: %s\n", rep.Outcome)
	if rep.Outcome != "verified" {
		return exitError{code: 1, msg: "caller not verified"}
	}
	switch {
	case o.agentKey == "":
		return exitError{code: 1, msg: "verified, but no agent key to receive the token (--agent-key)"}
	case rep.Token == "":
		return exitError{code: 1, msg: "verified, but the agent stream delivered no token"}
	case rep.TokenErr != nil:
		return exitError{code: 1, msg: "token does not verify: " + rep.TokenErr.Error()}
	}
	v := rep.Verified
	if cust != nil && v.Subject != cust.ID {
		return exitError{code: 1, msg: fmt.Sprintf("token subject %q is not %q", v.Subject, cust.ID)}
	}
	if v.Call != rep.CallSid {
		return exitError{code: 1, msg: fmt.Sprintf("token call %q is not %q", v.Call, rep.CallSid)}
	}
	fmt.Fprintf(stdout, "token: signature verified against %s (kid %s)\n", jwksURL(o.server), v.KeyID)
	fmt.Fprintf(stdout, "  sub %s  acr %s  amr %v  request %s  data_points %v  jti %s  expires %s\n",
		v.Subject, v.ACR, v.AMR, v.CCPARequest, v.DataPoints, v.ID, v.Expiry.Format(time.RFC3339))
	if v.AuthorizedAgent {
		fmt.Fprintf(stdout, "  the caller acted as an authorized agent for %s (CCPA §7063)\n", v.Subject)
	}
	return nil
}

// buildAnswers maps prompt ids to the digits the simulated caller keys.
func buildAnswers(o callOptions) (map[string]string, *kba.Customer, error) {
	dir := kba.DemoDirectory()
	if o.directory != "" {
		data, err := os.ReadFile(o.directory)
		if err != nil {
			return nil, nil, err
		}
		if dir, err = kba.ParseDirectory(data); err != nil {
			return nil, nil, err
		}
	}
	answers := map[string]string{"language_menu": "1", "request_menu": "1", "declaration": "1",
		"agent_menu": "1", "correct_menu": "4", "offer_opt_out": "2"}
	if strings.HasPrefix(strings.ToLower(o.lang), "es") {
		answers["language_menu"] = "2"
	}
	for digit, req := range map[string]string{"1": "know_categories", "2": "know_specific", "3": "delete",
		"4": "correct", "5": "opt_out", "6": "limit", "7": "account_service"} {
		if o.request == req {
			answers["request_menu"] = digit
		}
	}
	var cust *kba.Customer
	if o.customer != "" {
		c, ok := dir.ByID(o.customer)
		if !ok {
			return nil, nil, fmt.Errorf("customer %q is not in the directory", o.customer)
		}
		cust = c
		answers["ask_account"] = c.Account + "#"
		if key, err := c.TOTPKey(); err == nil && len(key) > 0 { // the customer's authenticator app
			answers["ask_totp"] = kba.TOTPCode(key, kba.TOTPStepAt(time.Now()), kba.TOTPDigits)
		}
		for _, f := range []kba.Factor{"dob", "zip", "ssn_last4", "pin", "last_payment"} {
			spec, ok := kba.Spec(f)
			if !ok {
				continue
			}
			a := kba.AnswerDigits(c, f)
			if spec.Terminator {
				a += "#"
			}
			answers[spec.Prompt] = a
		}
	}
	if o.answers != "" {
		for _, kv := range strings.Split(o.answers, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || k == "" {
				return nil, nil, fmt.Errorf("--answers: %q is not prompt=digits", kv)
			}
			for _, r := range v {
				if !strings.ContainsRune("0123456789*#", r) {
					return nil, nil, fmt.Errorf("--answers: %s: only 0-9, * and # can be keyed", k)
				}
			}
			answers[k] = v
		}
	}
	if cust == nil && o.answers == "" {
		return nil, nil, errors.New("give --customer or --answers")
	}
	return answers, cust, nil
}

func wsURL(server, path string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("server %q: want http(s)://host:port", server)
	}
	switch u.Scheme {
	case "https", "wss":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path = path
	return u.String(), nil
}

func jwksURL(server string) string { return strings.TrimSuffix(server, "/") + "/.well-known/jwks.json" }

func newCallSid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "CA" + hex.EncodeToString(b[:])
}

// placeCall plays the platform's side of one call and, with an agent key, watches the agent
// stream for the outcome and the token.
func placeCall(ctx context.Context, o callOptions, answers map[string]string, out io.Writer) (*callReport, error) {
	rep := &callReport{CallSid: newCallSid()}
	if o.platform == "audiosocket" {
		uuid := audiosocket.NewUUID()
		rep.CallSid = audiosocket.FormatUUID(uuid)
	}
	params := map[string]string{}
	if o.request != "" {
		params["request"] = o.request
	}
	if o.lang != "" {
		params["lang"] = o.lang
	}
	if o.asAgent {
		params["agent"] = "1"
	}
	sim, dialect, callID, err := dialPlatform(ctx, o, rep.CallSid, params, out)
	if err != nil {
		return nil, err
	}
	rep.CallSid = callID
	// The agent stream replays what a call produced before the subscription, so watching
	// after the call started loses nothing (and WebRTC calls only get their id now).
	var agentMsgs <-chan sessions.AgentMessage
	if o.agentKey != "" {
		ch, closeAgent, err := watchAgent(ctx, o.server, o.agentKey, rep.CallSid)
		if err != nil {
			sim.Close()
			return nil, fmt.Errorf("agent stream: %w", err)
		}
		defer closeAgent()
		agentMsgs = ch
	}
	defer sim.Close()
	drv := &simDriver{sim: sim, answers: answers, namedMarks: dialect.named, played: dialect.played, realtime: o.realtime,
		bargeIn: o.bargeIn, inband: o.dtmf == "inband", out: out,
		passcode: func() (string, error) { return demoPasscode(ctx, o.server, rep.CallSid) }}
	if !dialect.named {
		cat, err := prompts.Load()
		if err != nil {
			return nil, err
		}
		if drv.index, err = promptIndex(cat, dialect.ulaw); err != nil {
			return nil, err
		}
	}
	if err := drv.run(ctx); err != nil {
		return rep, err
	}
	rep.Prompts, rep.Outcome = drv.prompts, drv.outcome
	if c := drv.closed; c.Code != 0 && c.Code != websocket.CloseNormalClosure {
		fmt.Fprintf(out, "stream closed: %d %s\n", c.Code, c.Reason)
	}
	if agentMsgs == nil {
		return rep, nil
	}
	wait := time.NewTimer(3 * time.Second)
	defer wait.Stop()
	for {
		select {
		case m, ok := <-agentMsgs:
			if !ok {
				return rep, nil
			}
			rep.Agent = append(rep.Agent, m)
			printAgent(out, m)
			switch m.Type {
			case "verified":
				rep.Token = m.Token
				rep.Verified, rep.TokenErr = checkToken(ctx, o, m.Token)
			case "call":
				if m.State == "ended" {
					return rep, nil
				}
			}
		case <-wait.C:
			return rep, nil
		case <-ctx.Done():
			return rep, ctx.Err()
		}
	}
}

func printAgent(out io.Writer, m sessions.AgentMessage) {
	switch m.Type {
	case "call":
		if m.State == "ended" {
			fmt.Fprintf(out, "agent: call ended (%s)\n", m.Reason)
			return
		}
		fmt.Fprintf(out, "agent: call %s caller %s transport %s\n", m.State, m.Caller, m.Transport)
	case "step":
		fmt.Fprintf(out, "agent: step %s %s\n", m.Step, m.Result)
	case "verified":
		fmt.Fprintf(out, "agent: verified level %s request %s amr %v (token received)\n", m.Level, m.Request, m.AMR)
	case "not_verified":
		fmt.Fprintf(out, "agent: not verified: %s\n", m.Reason)
	}
}

func checkToken(ctx context.Context, o callOptions, raw string) (*token.Verified, error) {
	keys, err := token.FetchJWKS(ctx, http.DefaultClient, jwksURL(o.server))
	if err != nil {
		return nil, err
	}
	return token.Verify(raw, keys, token.Expected{Issuer: o.issuer, Audience: o.audience, Now: time.Now()})
}

// watchAgent subscribes to one call on the agent stream. Messages arrive on the channel until
// the returned func is called.
func watchAgent(ctx context.Context, server, key, call string) (<-chan sessions.AgentMessage, func(), error) {
	conn, err := dialAgentStream(ctx, server, key, map[string]any{"type": "subscribe", "call": call})
	if err != nil {
		return nil, nil, err
	}
	ch := make(chan sessions.AgentMessage, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		last := ""
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			// The server refuses a subscription while its message log is unavailable (its
			// state store is down); subscribe again, from the last message seen, until it
			// answers or the call ends.
			var reply struct{ Type, Call, Reason string }
			if json.Unmarshal(data, &reply) == nil && reply.Type == "error" && reply.Call == call &&
				strings.Contains(reply.Reason, "unavailable") {
				select {
				case <-ctx.Done():
					return
				case <-time.After(250 * time.Millisecond):
				}
				sub := map[string]any{"type": "subscribe", "call": call}
				if last != "" {
					sub["after"] = last
				}
				if conn.WriteJSON(sub) != nil {
					return
				}
				continue
			}
			var m sessions.AgentMessage
			if json.Unmarshal(data, &m) == nil && m.Call == call {
				if m.ID != "" {
					last = m.ID
				}
				select {
				case ch <- m:
				default:
				}
			}
		}
	}()
	return ch, func() { conn.Close(); <-done }, nil
}

// demoPasscode reads the passcode the demo sent for call from its inbox (GET /v1/demo/inbox,
// served to this machine only), waiting briefly for it to arrive.
func demoPasscode(ctx context.Context, server, call string) (string, error) {
	u := strings.TrimSuffix(server, "/") + "/v1/demo/inbox?call=" + url.QueryEscape(call)
	for i := 0; i < 30; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		var body struct {
			Messages []struct {
				Code string `json:"code"`
			} `json:"messages"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			return "", fmt.Errorf("demo inbox: HTTP %d", resp.StatusCode)
		}
		if len(body.Messages) > 0 && body.Messages[0].Code != "" {
			return body.Messages[0].Code, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", errors.New("no passcode arrived in the demo inbox")
}
