package agent_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/agent"
	"github.com/callproof/callproof/sessions/token"
)

var writeScreenshots = flag.Bool("screenshots", false,
	"write the agent page screenshots to testdata/ (otherwise they go to the test's artifact directory)")

// instrument runs in every frame before the page's own scripts (injected over CDP, so the
// page's CSP does not apply to it): it records CSP violations and what the page sends on
// its WebSockets, which carry no secret (the key travels in the handshake URL).
const instrument = `
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
window.__sent = [];
const __send = WebSocket.prototype.send;
WebSocket.prototype.send = function (d) { window.__sent.push(String(d)); return __send.call(this, d); };
`

// contrastCheck lists visible text whose colour against its effective background is below
// WCAG 2.2 AA: 4.5:1, or 3:1 for large text (24px, or 18.66px bold). Disabled controls are
// exempt, as WCAG allows.
const contrastCheck = `(() => {
  const parse = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bgOf = (el) => { for (let n = el; n; n = n.parentElement) { const c = parse(getComputedStyle(n).backgroundColor); if (c && c.a > 0.5) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!el.getClientRects().length || el.closest('[hidden], .visually-hidden, :disabled')) continue;
    const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent.trim()).join('');
    if (!text) continue;
    const st = getComputedStyle(el);
    const fg = parse(st.color), bg = bgOf(el);
    const l1 = lum(fg), l2 = lum(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight, 10) >= 700;
    const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
    if (ratio < need) bad.push(text.slice(0, 40) + ' ' + ratio.toFixed(2) + ':1 < ' + need);
  }
  return bad;
})()`

// browserEnv is a server with the page, a real Hub on a real store at /v1/agent (replaceable,
// to restart it), a real Signer's JWKS, a small redeem endpoint, and a headless Chromium.
type browserEnv struct {
	root   *testing.T // owns the servers, hubs and browser
	t      *testing.T // the running (sub)test, for assertions
	store  *sessions.Memory
	hub    atomic.Pointer[agent.Hub]
	agentH atomic.Pointer[http.Handler]
	priv   ed25519.PrivateKey // e.signer's key, for signers that share its kid
	signer *token.Signer
	srv    *httptest.Server
	crm    *httptest.Server // an allowed parent origin for the embed
	evil   *httptest.Server // a parent origin that is not allowed

	redeems  atomic.Int32
	redeemed sync.Map // jti -> true

	browser context.Context // the browser's first tab; later tabs derive from it
	tab     context.Context // with the test's deadline

	consoleMu sync.Mutex
	console   []string
	consoleWG sync.WaitGroup
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CALLPROOF_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium not found: the agent page browser tests need it (scripts/test.sh installs it: " +
		"apt-get install chromium). Set CALLPROOF_CHROMIUM to its path, or run go test -short to skip browser tests.")
	return ""
}

func newBrowserEnv(t *testing.T) *browserEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped under -short: it drives headless Chromium (run without -short; scripts/test.sh installs Chromium)")
	}
	exe := chromiumPath(t)
	e := &browserEnv{root: t, t: t, store: sessions.NewMemory()}

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.priv = priv
	if e.signer, err = token.NewSigner(priv, token.Config{}); err != nil {
		t.Fatal(err)
	}

	e.crm = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.serveCRM(w, r, "CA1") }))
	e.evil = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.serveCRM(w, r, "CA1") }))
	t.Cleanup(e.crm.Close)
	t.Cleanup(e.evil.Close)

	mux := http.NewServeMux()
	pageH := agent.PageHandler(agent.WithFrameAncestors(e.crm.URL))
	mux.Handle("/agent", pageH)
	mux.Handle("/agent/", pageH)
	mux.Handle("/v1/agent", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*e.agentH.Load()).ServeHTTP(w, r)
	}))
	mux.Handle("GET /.well-known/jwks.json", e.signer.JWKSHandler())
	mux.HandleFunc("POST /v1/tokens/redeem", e.serveRedeem)
	e.srv = httptest.NewServer(mux)
	e.startHub()
	t.Cleanup(func() {
		e.hub.Load().Close() // hijacked connections are the hub's to close
		e.srv.Close()
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", "new"),
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 880),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // root in a container has no user namespace sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		e.consoleWG.Wait()
	})
	// The first action starts the browser: no deadline on it (go-libraries §6.1).
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium %s: %v", exe, err)
	}
	e.browser = bctx
	tab, cancel := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancel)
	e.tab = tab
	e.prepareTab(tab, "main")
	return e
}

// prepareTab injects the instrumentation, sizes the viewport and collects console messages.
func (e *browserEnv) prepareTab(ctx context.Context, name string) {
	e.t.Helper()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: instrument}); err != nil {
		e.t.Fatalf("inject instrumentation: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 880)); err != nil {
		e.t.Fatalf("viewport: %v", err)
	}
	msgs := chromedp.Console(ctx)
	e.consoleWG.Add(1)
	go func() {
		defer e.consoleWG.Done()
		for m, err := range msgs {
			if err != nil {
				return
			}
			e.consoleMu.Lock()
			e.console = append(e.console, name+": "+m.String())
			e.consoleMu.Unlock()
		}
	}()
}

func (e *browserEnv) consoleLines() []string {
	e.consoleMu.Lock()
	defer e.consoleMu.Unlock()
	return append([]string(nil), e.console...)
}

func (e *browserEnv) startHub() *agent.Hub {
	h := agent.NewHub(zaptest.NewLogger(e.root), e.store)
	var hd http.Handler = h.Handler([]string{key})
	e.hub.Store(h)
	e.agentH.Store(&hd)
	return h
}

// serveRedeem stands in for POST /v1/tokens/redeem: the agent key as Bearer, {"token"}, 200
// with the verified claims the first time, 409 afterwards.
func (e *browserEnv) serveRedeem(w http.ResponseWriter, r *http.Request) {
	e.redeems.Add(1)
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+key {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"agent key required"}`)
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"want {\"token\":\"...\"}"}`)
		return
	}
	v, err := token.Verify(req.Token, e.signer.JWKS(), token.Expected{})
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid token"}`)
		return
	}
	if _, again := e.redeemed.LoadOrStore(v.ID, true); again {
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":"already redeemed"}`)
		return
	}
	json.NewEncoder(w).Encode(v)
}

// serveCRM is a CRM page that frames one call's panel and hands it the agent key when the
// panel says it is ready: the snippet the README documents.
func (e *browserEnv) serveCRM(w http.ResponseWriter, _ *http.Request, call string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>CRM</title></head><body>
<h1>Customer record</h1>
<iframe id="callproof" src="%[1]s/agent/call/%[2]s" title="Caller verification" width="520" height="760" allow="clipboard-write"></iframe>
<script>
const CALLPROOF = %[3]q;
window.__fromCallproof = [];
window.addEventListener('message', (e) => {
  if (e.origin !== CALLPROOF) return;
  window.__fromCallproof.push(e.data);
  if (e.data && e.data.type === 'callproof:ready') {
    document.getElementById('callproof').contentWindow.postMessage({type: 'callproof:agent-key', key: %[4]q}, CALLPROOF);
  }
});
</script></body></html>`, e.srv.URL, call, e.srv.URL, key)
}

func (e *browserEnv) publish(msgs ...sessions.AgentMessage) {
	e.t.Helper()
	for _, m := range msgs {
		m.At = time.Now().UTC()
		if err := e.hub.Load().Publish(context.Background(), m); err != nil {
			e.t.Fatalf("publish %v: %v", m, err)
		}
	}
}

func (e *browserEnv) issue(s *token.Signer, c sessions.Claims) string {
	e.t.Helper()
	tok, _, err := s.Issue(context.Background(), c)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *browserEnv) do(ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	e.t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		e.t.Fatalf("%s: %v\nconsole:\n%s", what, err, strings.Join(e.consoleLines(), "\n"))
	}
}

func evalJS[T any](e *browserEnv, ctx context.Context, js string) T {
	e.t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		e.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitJS polls a JavaScript condition. chromedp.Poll builds its predicate with new Function,
// which the page's CSP (rightly) forbids, so the loop runs here over Runtime.evaluate.
func (e *browserEnv) waitJS(ctx context.Context, what, cond string) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`Boolean(`+cond+`)`))
		if err == nil && ok {
			return
		}
		lastErr = err
		time.Sleep(25 * time.Millisecond)
	}
	status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.ws + ' | ' + (document.querySelector('#conn-text')?.textContent || '') + ' | ' + (document.querySelector('#panel')?.innerText || '').slice(0, 600)`))
	e.t.Fatalf("timed out waiting for %s (%s; last error %v)\npage: %s\nconsole:\n%s", what, cond, lastErr, status, strings.Join(e.consoleLines(), "\n"))
}

func (e *browserEnv) text(ctx context.Context, sel string) string {
	e.t.Helper()
	return evalJS[string](e, ctx, fmt.Sprintf(`document.querySelector(%q)?.textContent ?? ''`, sel))
}

// screenshot saves the viewport as name: in testdata/ with -screenshots for the two pictures
// the README shows, otherwise (and always for the others) in the test's artifact directory
// (kept with go test -artifacts).
func (e *browserEnv) screenshot(ctx context.Context, name string) {
	e.t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		e.t.Fatalf("screenshot: %v", err)
	}
	dir := e.t.ArtifactDir()
	if *writeScreenshots && (name == "agent-verified.png" || name == "agent-not-verified.png") {
		dir = "testdata"
		if err := os.MkdirAll(dir, 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("screenshot %s (%d bytes)", path, len(png))
}

func started(call, caller, request string) sessions.AgentMessage {
	return sessions.AgentMessage{Type: "call", Call: call, State: "started", Caller: caller,
		Transport: "twilio", Request: request, Lang: "en-US"}
}

func stepResult(call, s, result string) sessions.AgentMessage {
	return sessions.AgentMessage{Type: "step", Call: call, Step: s, Result: result}
}

func claimsFor(call string) sessions.Claims {
	return sessions.Claims{Subject: "cus_ada", Call: call, ACR: "urn:callproof:ccpa:reasonable", AMR: []string{"kba"},
		CCPARequest: "know_categories", DataPoints: []string{"dob", "zip"}, Declaration: true, ANIMatch: true,
		Verstat: "TN-Validation-Passed-A", RequestID: "req_" + call}
}

// TestAgentPageInBrowser drives the page in headless Chromium against a real Hub, a real
// Signer's JWKS and a redeem endpoint: sign-in, live results with the signature checked in
// the browser, not-verified reasons, tampered tokens, keyboard use, the live region,
// reconnect and resume without loss or duplicates, and the CRM embed.
func TestAgentPageInBrowser(t *testing.T) {
	e := newBrowserEnv(t)
	tab := e.tab

	t.Run("sign in", func(t *testing.T) {
		e.t = t
		e.do(tab, "open /agent", chromedp.Navigate(e.srv.URL+"/agent"), chromedp.WaitVisible(chromedp.ID("key")))
		if got := evalJS[string](e, tab, `document.activeElement.id`); got != "key" {
			t.Errorf("focus starts on %q, want the key field", got)
		}
		// Wrong key, by keyboard: refused before any WebSocket opens.
		e.do(tab, "type a wrong key", chromedp.SendKeys(chromedp.ID("key"), "not-the-agent-key-0000"+kb.Enter))
		e.waitJS(tab, "the sign-in error", `!document.getElementById('signin-error').hidden`)
		if got := e.text(tab, "#signin-error"); got != "That agent key was not accepted." {
			t.Errorf("sign-in error %q", got)
		}
		e.do(tab, "type the key", chromedp.Clear(chromedp.ID("key")), chromedp.SendKeys(chromedp.ID("key"), key+kb.Enter))
		e.waitJS(tab, "the WebSocket to open", `document.body.dataset.ws === 'open'`)
		e.waitJS(tab, "the subscription", `window.__sent.length === 1`)
		if got := evalJS[string](e, tab, `window.__sent[0]`); got != `{"type":"subscribe","all":true}` {
			t.Errorf("first subscription %s", got)
		}
		if v := evalJS[string](e, tab, `document.getElementById('key').value`); v != "" {
			t.Error("the key stays in the password field after sign-in")
		}
		if n := evalJS[int](e, tab, `localStorage.length + sessionStorage.length + document.cookie.length`); n != 0 {
			t.Errorf("the page stored %d things in web storage or cookies", n)
		}
	})

	var ca1Token string
	t.Run("verified with the signature checked", func(t *testing.T) {
		e.t = t
		ca1Token = e.issue(e.signer, claimsFor("CA1"))
		e.publish(
			started("CA1", "***0100", "know_categories"),
			stepResult("CA1", "language_menu", "passed"),
			stepResult("CA1", "request_menu", "passed"),
			stepResult("CA1", "ask_account", "passed"),
			stepResult("CA1", "risk", "passed"),
			stepResult("CA1", "dob", "passed"),
			stepResult("CA1", "zip", "passed"),
			stepResult("CA1", "declaration", "passed"),
			sessions.AgentMessage{Type: "verified", Call: "CA1", Level: "reasonable", Request: "know_categories",
				AMR: []string{"kba"}, Token: ca1Token},
		)
		e.waitJS(tab, "CA1 verified", `document.getElementById('badge').dataset.outcome === 'verified' && document.getElementById('sig').dataset.sig === 'ok'`)
		if got := e.text(tab, "#sig-title"); got != "✓ Signature checked" {
			t.Errorf("signature line %q", got)
		}
		if got := e.text(tab, "#panel-title"); got != "Call ***0100" {
			t.Errorf("panel title %q", got)
		}
		if n := evalJS[int](e, tab, `document.querySelectorAll('#timeline li').length`); n != 7 {
			t.Errorf("timeline has %d entries, want 7", n)
		}
		claims := e.text(tab, "#claims")
		for _, want := range []string{"reasonable degree", "Know: categories of information", "knowledge questions (kba)",
			"Date of birth, ZIP code", "Affirmed by the caller", "TN-Validation-Passed-A", "Matches a number on file", "cus_ada"} {
			if !strings.Contains(claims, want) {
				t.Errorf("claims lack %q: %s", want, claims)
			}
		}
		e.waitJS(tab, "the countdown", `/^[0-4]:[0-5]\d left/.test(document.getElementById('ttl').textContent)`)
		first := e.text(tab, "#ttl")
		e.waitJS(tab, "the countdown to move", fmt.Sprintf(`document.getElementById('ttl').textContent !== %q`, first))
		e.waitJS(tab, "the live region", `document.getElementById('announcer').textContent !== ''`)
		if got := e.text(tab, "#announcer"); got != "Call ***0100 verified, reasonable degree" {
			t.Errorf("live region %q", got)
		}
		if got := e.text(tab, `[data-call="CA1"] .ci-progress`); got != "7 steps · 7 passed · reasonable degree" {
			t.Errorf("list item progress %q", got)
		}
	})

	t.Run("redeem and copy", func(t *testing.T) {
		e.t = t
		e.do(tab, "redeem", chromedp.Click(chromedp.ID("redeem")))
		e.waitJS(tab, "the redeem result", `document.getElementById('action-status').dataset.kind === 'ok'`)
		if got := e.text(tab, "#action-status"); got != "Redeemed for customer cus_ada. This token cannot be redeemed again." {
			t.Errorf("after the first redeem: %q", got)
		}
		e.do(tab, "redeem again", chromedp.Click(chromedp.ID("redeem")))
		e.waitJS(tab, "the second redeem result", `document.getElementById('action-status').dataset.kind === 'warn'`)
		if got := e.text(tab, "#action-status"); !strings.HasPrefix(got, "Already redeemed") {
			t.Errorf("after the second redeem: %q", got)
		}
		if n := e.redeems.Load(); n != 2 {
			t.Errorf("%d redeem requests, want 2", n)
		}
		for _, name := range []string{"clipboard-read", "clipboard-write"} {
			if _, err := chromedp.CallBrowser(tab, browser.SetPermission, browser.SetPermissionParams{
				Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: e.srv.URL}); err != nil {
				t.Fatalf("grant %s: %v", name, err)
			}
		}
		e.do(tab, "copy", chromedp.Click(chromedp.ID("copy")))
		e.waitJS(tab, "the copy result", `document.getElementById('action-status').textContent === 'Token copied to the clipboard.'`)
		got, err := chromedp.Run(tab, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("read the clipboard: %v", err)
		}
		if got != ca1Token {
			t.Errorf("clipboard holds %d bytes, not the token", len(got))
		}
	})

	t.Run("not verified shows the reason", func(t *testing.T) {
		e.t = t
		e.publish(
			started("CA2", "***0199", "delete"),
			stepResult("CA2", "language_menu", "passed"),
			stepResult("CA2", "request_menu", "passed"),
			stepResult("CA2", "ask_account", "passed"),
			stepResult("CA2", "dob", "passed"),
			stepResult("CA2", "zip", "failed"),
			stepResult("CA2", "ssn_last4", "failed"),
			sessions.AgentMessage{Type: "not_verified", Call: "CA2", Request: "delete", Reason: "mismatch"},
			sessions.AgentMessage{Type: "call", Call: "CA2", State: "ended", Reason: "mismatch", Request: "delete"},
		)
		e.waitJS(tab, "CA2 in the list", `document.querySelector('[data-call="CA2"] .pill')?.textContent === 'Not verified'`)
		if got := e.text(tab, "#panel-title"); got != "Call ***0100" {
			t.Errorf("a new call took the panel away: %q", got)
		}
		e.waitJS(tab, "the live region", `document.getElementById('announcer').textContent.includes('***0199')`)
		if got := e.text(tab, "#announcer"); got != "Call ***0199 not verified: an answer did not match the records on file" {
			t.Errorf("live region %q", got)
		}
	})

	t.Run("state store status banner", func(t *testing.T) {
		e.t = t
		h := e.hub.Load()
		h.SetStatus(agent.Status{State: agent.StatusDegraded, Reason: agent.ReasonStateStoreUnavailable, Node: "cp-1"})
		e.waitJS(tab, "the status banner", `!document.getElementById('service').hidden`)
		if got := e.text(tab, "#service"); !strings.Contains(got, "cannot reach its state store") || !strings.Contains(got, "nobody is verified") {
			t.Errorf("banner %q", got)
		}
		if n := evalJS[int](e, tab, `document.querySelectorAll('.call-item').length`); n != 2 {
			t.Errorf("the status notice became a call: %d calls listed", n)
		}
		h.SetStatus(agent.Status{State: agent.StatusOK, Node: "cp-1"})
		e.waitJS(tab, "the banner to go", `document.getElementById('service').hidden`)
		e.waitJS(tab, "the recovery announced", `document.getElementById('announcer').textContent === 'Verification is available again.'`)
	})

	t.Run("keyboard", func(t *testing.T) {
		e.t = t
		// Newest first: CA2, then CA1. Start on CA1 (the open one), go up, open with Enter.
		e.do(tab, "focus CA1", chromedp.Focus(chromedp.CSS(`[data-call="CA1"]`)))
		e.do(tab, "arrow up", chromedp.KeyEvent(kb.ArrowUp))
		if got := evalJS[string](e, tab, `document.activeElement.dataset.call || document.activeElement.id`); got != "CA2" {
			t.Fatalf("ArrowUp moved focus to %q, want CA2", got)
		}
		if got := evalJS[string](e, tab, `getComputedStyle(document.activeElement).outlineStyle + ' ' + getComputedStyle(document.activeElement).outlineWidth`); got != "solid 3px" {
			t.Errorf("keyboard focus outline %q, want a visible 3px outline", got)
		}
		e.do(tab, "enter", chromedp.KeyEvent(kb.Enter))
		e.waitJS(tab, "CA2 open", `document.getElementById('panel-title').textContent === 'Call ***0199'`)
		if got := evalJS[string](e, tab, `document.activeElement.id`); got != "panel-title" {
			t.Errorf("Enter left focus on %q, want the panel heading", got)
		}
		if got := evalJS[string](e, tab, `document.querySelector('[data-call="CA2"]').getAttribute('aria-current')`); got != "true" {
			t.Errorf("the open call is not aria-current: %q", got)
		}
		if got := e.text(tab, "#reason"); got != "An answer did not match the records on file." {
			t.Errorf("reason %q", got)
		}
		if got := e.text(tab, "#badge-text"); got != "Not verified" {
			t.Errorf("badge %q", got)
		}
		if n := evalJS[int](e, tab, `document.querySelectorAll('#timeline li[data-result="failed"]').length`); n != 2 {
			t.Errorf("%d failed steps shown, want 2", n)
		}
		if !evalJS[bool](e, tab, `document.getElementById('actions').hidden && document.getElementById('claims').hidden`) {
			t.Error("a not verified call offers token actions or claims")
		}
		if bad := evalJS[[]string](e, tab, contrastCheck); len(bad) > 0 {
			t.Errorf("text below WCAG AA contrast: %q", bad)
		}
		e.do(tab, "blur", chromedp.Blur(chromedp.ID("panel-title")))
		e.screenshot(tab, "agent-not-verified.png")
		e.do(tab, "refocus", chromedp.Focus(chromedp.ID("panel-title")))

		e.do(tab, "escape", chromedp.KeyEvent(kb.Escape))
		if got := evalJS[string](e, tab, `document.activeElement.dataset.call || document.activeElement.id`); got != "CA2" {
			t.Errorf("Escape moved focus to %q, want back to CA2 in the list", got)
		}
		e.do(tab, "down and enter", chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.Enter))
		e.waitJS(tab, "CA1 open", `document.getElementById('panel-title').textContent === 'Call ***0100'`)
		if bad := evalJS[[]string](e, tab, contrastCheck); len(bad) > 0 {
			t.Errorf("text below WCAG AA contrast: %q", bad)
		}
		e.do(tab, "blur", chromedp.Blur(chromedp.ID("panel-title")))
		e.screenshot(tab, "agent-verified.png")
	})

	t.Run("token warnings", func(t *testing.T) {
		e.t = t
		_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
		stranger, err := token.NewSigner(otherKey, token.Config{}) // a key the JWKS does not list
		if err != nil {
			t.Fatal(err)
		}
		tampered := func(call string) string {
			parts := strings.Split(e.issue(e.signer, claimsFor(call)), ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			payload = []byte(strings.Replace(string(payload), `"sub":"cus_ada"`, `"sub":"cus_mallory"`, 1))
			parts[1] = base64.RawURLEncoding.EncodeToString(payload)
			return strings.Join(parts, ".")
		}
		past, err := token.NewSigner(e.priv, token.Config{}, token.WithClock(func() time.Time { return time.Now().Add(-10 * time.Minute) }))
		if err != nil {
			t.Fatal(err)
		}
		otherAud, err := token.NewSigner(e.priv, token.Config{Audience: "someone-else"})
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			call, token, title, problem string
		}{
			{"CA3", tampered("CA3"), "⚠ Signature NOT checked — do not rely on this token", "The signature does not match"},
			{"CA4", e.issue(stranger, claimsFor("CA4")), "⚠ Signature NOT checked — do not rely on this token", "unknown kid"},
			{"CA9", "", "⚠ Signature NOT checked — do not rely on this token", "The server sent no token for this verification."},
			{"CA5", e.issue(past, claimsFor("CA5")), "✓ Signature checked, but the token has problems:", "The token expired at"},
			{"CA6", e.issue(otherAud, claimsFor("CA6")), "✓ Signature checked, but the token has problems:", `meant for “someone-else”, not “callproof-agent”`},
			{"CA7", e.issue(e.signer, claimsFor("CA1")), "✓ Signature checked, but the token has problems:", "The token is for a different call."},
		}
		for _, tc := range tests {
			e.publish(started(tc.call, "***0142", "know_categories"), stepResult(tc.call, "dob", "passed"),
				sessions.AgentMessage{Type: "verified", Call: tc.call, Level: "reasonable", Request: "know_categories", AMR: []string{"kba"}, Token: tc.token})
			e.do(tab, "open "+tc.call, chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-call=%q]`, tc.call))))
			e.waitJS(tab, tc.call+" warning", `document.getElementById('sig').dataset.sig === 'warn' && document.getElementById('panel-title').textContent === 'Call ***0142'`)
			if got := e.text(tab, "#sig-title"); got != tc.title {
				t.Errorf("%s: signature line %q, want %q", tc.call, got, tc.title)
			}
			if got := e.text(tab, "#sig-problems"); !strings.Contains(got, tc.problem) {
				t.Errorf("%s: problems %q lack %q", tc.call, got, tc.problem)
			}
			if got := evalJS[string](e, tab, `document.getElementById('badge').dataset.outcome`); got != "warn" {
				t.Errorf("%s: badge %q, want warn", tc.call, got)
			}
			if strings.HasPrefix(tc.title, "⚠") && !evalJS[bool](e, tab, `document.getElementById('claims').hidden`) {
				t.Errorf("%s: claims of an unverified token are shown", tc.call)
			}
			e.screenshot(tab, "agent-token-"+tc.call+".png")
		}
		e.waitJS(tab, "a warning in the live region", `document.getElementById('announcer').textContent.startsWith('Warning')`)
		if got := e.text(tab, "#announcer"); got != "Warning: the token for call ***0142 failed its checks" {
			t.Errorf("live region %q", got)
		}
	})

	t.Run("reconnect resumes without loss or duplicates", func(t *testing.T) {
		e.t = t
		e.do(tab, "open CA1", chromedp.Click(chromedp.CSS(`[data-call="CA1"]`)))
		e.waitJS(tab, "CA1 open", `document.getElementById('panel-title').textContent === 'Call ***0100'`)
		all, err := e.store.Since(context.Background(), "", "")
		if err != nil {
			t.Fatal(err)
		}
		lastBefore := all[len(all)-1].ID
		subsBefore := evalJS[int](e, tab, `window.__sent.length`)

		// Restart the agent endpoint: the old hub closes every connection (1001), and until
		// the new one is mounted the endpoint answers 503.
		var down http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
		})
		old := e.hub.Load()
		e.agentH.Store(&down)
		old.Close()
		e.waitJS(tab, "the page to notice", `document.body.dataset.ws !== 'open'`)

		// What happens while the page is away is stored, and must arrive exactly once.
		e.hub.Store(agent.NewHub(zaptest.NewLogger(e.root), e.store))
		e.publish(
			started("CA8", "***0177", "opt_out"),
			stepResult("CA8", "language_menu", "passed"),
			stepResult("CA8", "request_menu", "passed"),
			sessions.AgentMessage{Type: "call", Call: "CA1", State: "ended", Reason: "verified", Request: "know_categories"},
		)
		var up http.Handler = e.hub.Load().Handler([]string{key})
		e.agentH.Store(&up)
		old.Close() // idempotent; keeps cleanup simple

		e.waitJS(tab, "the page to reconnect", `document.body.dataset.ws === 'open'`)
		e.waitJS(tab, "CA8 from the resume", `document.querySelector('[data-call="CA8"] .ci-progress')?.textContent === '2 steps · 2 passed'`)
		e.waitJS(tab, "CA1 ended", `document.getElementById('panel-state').textContent === 'Call ended'`)
		if n := evalJS[int](e, tab, `document.querySelectorAll('#timeline li').length`); n != 7 {
			t.Errorf("CA1 timeline has %d entries after the reconnect, want exactly 7", n)
		}
		if n := evalJS[int](e, tab, `document.querySelectorAll('#calls li').length`); n != 9 {
			t.Errorf("%d calls listed, want 9 (CA1..CA9, each once)", n)
		}
		subs := evalJS[[]string](e, tab, `window.__sent`)
		if len(subs) != subsBefore+1 {
			t.Fatalf("sent %q, want one more subscription after the reconnect", subs)
		}
		var sub struct {
			Type  string `json:"type"`
			All   bool   `json:"all"`
			After string `json:"after"`
		}
		if err := json.Unmarshal([]byte(subs[len(subs)-1]), &sub); err != nil || sub.Type != "subscribe" || !sub.All || sub.After != lastBefore {
			t.Errorf("resubscribed with %s, want all:true after %q", subs[len(subs)-1], lastBefore)
		}
		// And live messages flow again.
		e.publish(stepResult("CA8", "opt_out_confirmed", "passed"))
		e.waitJS(tab, "a live step after the reconnect", `document.querySelector('[data-call="CA8"] .ci-progress')?.textContent === '3 steps · 3 passed'`)
		if got := e.text(tab, "#conn-text"); got != "Live" {
			t.Errorf("connection status %q", got)
		}

		// A server that ignores "after" and replays the whole log must not duplicate a thing
		// either: the page drops what it already has, per call.
		release := make(chan struct{})
		var served sync.WaitGroup
		var replayAll http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served.Add(1)
			defer served.Done()
			up := websocket.Upgrader{}
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			if _, _, err := c.ReadMessage(); err != nil { // the subscription
				return
			}
			msgs, _ := e.store.Since(context.Background(), "", "")
			for _, m := range msgs {
				c.WriteJSON(m)
			}
			fresh, _ := e.store.Append(context.Background(), stepResult("CA8", "goodbye", "passed"))
			c.WriteJSON(fresh)
			<-release
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseServiceRestart, "restart"), time.Now().Add(time.Second))
		})
		e.agentH.Store(&replayAll)
		e.hub.Load().Close()
		e.waitJS(tab, "the step sent after the full replay", `document.querySelector('[data-call="CA8"] .ci-progress')?.textContent === '4 steps · 4 passed'`)
		if n := evalJS[int](e, tab, `document.querySelectorAll('#timeline li').length`); n != 7 {
			t.Errorf("CA1 timeline has %d entries after a full replay, want exactly 7", n)
		}
		if n := evalJS[int](e, tab, `document.querySelectorAll('#calls li').length`); n != 9 {
			t.Errorf("%d calls listed after a full replay, want 9", n)
		}
		// Back to a real hub for what follows.
		e.startHub()
		close(release)
		served.Wait()
		e.waitJS(tab, "the page to reconnect to the real hub", `document.body.dataset.ws === 'open' && window.__sent.length === `+fmt.Sprint(len(subs)+2))
	})

	t.Run("embedded in a CRM", func(t *testing.T) {
		e.t = t
		crmTab, cancel := chromedp.NewContext(e.browser)
		defer cancel()
		crmTab, cancelT := context.WithTimeout(crmTab, 30*time.Second)
		defer cancelT()
		e.prepareTab(crmTab, "crm")
		e.do(crmTab, "open the CRM", chromedp.Navigate(e.crm.URL))
		e.waitJS(crmTab, "the panel's result", `window.__fromCallproof.some((m) => m.type === 'callproof:result' && m.signature === 'checked')`)
		msgs := evalJS[[]map[string]any](e, crmTab, `window.__fromCallproof`)
		var kinds []string
		for _, m := range msgs {
			kinds = append(kinds, fmt.Sprint(m["type"]))
			if _, leaked := m["token"]; leaked {
				t.Errorf("the panel sent its parent a token: %v", m)
			}
			if c, ok := m["call"]; ok && c != "CA1" {
				t.Errorf("the CA1 panel reported call %v", c)
			}
			if m["type"] == "callproof:result" && m["signature"] == "checked" && (m["outcome"] != "verified" || m["valid"] != true) {
				t.Errorf("result message %v", m)
			}
		}
		if len(kinds) == 0 || kinds[0] != "callproof:ready" {
			t.Errorf("messages from the panel %q, want callproof:ready first", kinds)
		}
		e.screenshot(crmTab, "agent-embedded.png")

		// A page whose origin is not on the list cannot frame the panel at all.
		evilTab, cancelE := chromedp.NewContext(e.browser)
		defer cancelE()
		evilTab, cancelET := context.WithTimeout(evilTab, 30*time.Second)
		defer cancelET()
		e.prepareTab(evilTab, "evil")
		e.do(evilTab, "open the other CRM", chromedp.Navigate(e.evil.URL))
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(strings.Join(e.consoleLines(), "\n"), "evil: ") || !containsAll(e.consoleLines(), "evil: ", "frame-ancestors") {
			if time.Now().After(deadline) {
				t.Fatalf("no frame-ancestors refusal for a foreign parent; console:\n%s", strings.Join(e.consoleLines(), "\n"))
			}
			time.Sleep(25 * time.Millisecond)
		}
		if n := evalJS[int](e, evilTab, `window.__fromCallproof.length`); n != 0 {
			t.Errorf("a foreign parent got %d messages from the panel", n)
		}
	})

	t.Run("embed route opened directly", func(t *testing.T) {
		e.t = t
		e.do(tab, "open /agent/call/CA2", chromedp.Navigate(e.srv.URL+"/agent/call/CA2"), chromedp.WaitVisible(chromedp.ID("key")))
		e.do(tab, "sign in", chromedp.SendKeys(chromedp.ID("key"), key+kb.Enter))
		e.waitJS(tab, "CA2 in the panel", `document.getElementById('reason').textContent === 'An answer did not match the records on file.'`)
		if got := evalJS[string](e, tab, `window.__sent.at(-1)`); got != `{"type":"subscribe","call":"CA2"}` {
			t.Errorf("embed subscription %s", got)
		}
		if !evalJS[bool](e, tab, `document.getElementById('calls-section').hidden`) {
			t.Error("the one-call panel shows the call list")
		}
	})

	// Nothing the page did broke its own CSP, and it threw nothing.
	e.t = t
	for _, ctx := range []context.Context{tab} {
		if v := evalJS[[]string](e, ctx, `window.__csp`); len(v) > 0 {
			t.Errorf("CSP violations: %q", v)
		}
	}
	for _, line := range e.consoleLines() {
		if strings.Contains(line, "exception:") || (strings.Contains(line, "Content Security Policy") && !strings.HasPrefix(line, "evil: ")) {
			t.Errorf("console: %s", line)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", strings.Join(e.consoleLines(), "\n"))
	}
}

func containsAll(lines []string, subs ...string) bool {
	for _, l := range lines {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			return true
		}
	}
	return false
}
