package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// chromium finds the browser scripts/test.sh installs; the test fails without it.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped under -short; scripts/test.sh runs it")
	}
	for _, p := range []string{os.Getenv("CALLPROOF_CHROMIUM"), "/usr/bin/chromium", "chromium"} {
		if p == "" {
			continue
		}
		if exe, err := exec.LookPath(p); err == nil {
			return exe
		}
	}
	t.Fatal("Chromium not found: install it (Debian: apt-get install chromium) or run scripts/test.sh")
	return ""
}

// The agent's screen in a real browser follows a call placed with `callproof call`: the badge
// turns verified with the token's signature checked in the browser, and a failed call shows
// why.
func TestAgentPageFollowsRealCalls(t *testing.T) {
	exe := chromium(t)
	n := startNode(t, nil)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe),
		chromedp.Flag("headless", "new"), chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 880),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("no-first-run", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil { // starts the browser: no deadline on the first action
		t.Fatalf("start Chromium: %v", err)
	}
	tab, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(tab, chromedp.Navigate(n.url+"/agent"), chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), testAgentKey+kb.Enter)); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	waitFor(t, tab, `document.body.dataset.ws === "open"`)

	err, out := n.callCLI(t, "--customer", "cus_ada")
	if err != nil {
		t.Fatalf("call: %v\n%s", err, out)
	}
	ended := time.Now()
	call := callIDFrom(t, out)
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-call=%q]`, call)))); err != nil {
		t.Fatalf("open the call: %v", err)
	}
	waitFor(t, tab, `document.querySelector("#badge").dataset.outcome === "verified" && document.querySelector("#sig").dataset.sig === "ok"`)
	t.Logf("badge verified and signature checked %v after the caller's call ended", time.Since(ended).Round(time.Millisecond))
	shot(t, tab, "agent-call-verified.png")

	err, out = n.callCLI(t, "--customer", "cus_ben", "--answers", "ask_zip=00000")
	if err == nil {
		t.Fatalf("wrong answer verified:\n%s", out)
	}
	call = callIDFrom(t, out)
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-call=%q]`, call)))); err != nil {
		t.Fatalf("open the failed call: %v", err)
	}
	waitFor(t, tab, `document.querySelector("#badge").dataset.outcome === "not_verified" && !document.querySelector("#reason").hidden`)
	reason, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("#reason").textContent`))
	if err != nil || reason == "" {
		t.Fatalf("no reason shown for a failed call: %q %v", reason, err)
	}
	t.Logf("failed call shows: %s", reason)
}

func waitFor(t *testing.T, tab context.Context, cond string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](`Boolean(`+cond+`)`))
		if err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	state, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.body.innerText.slice(0, 800)`))
	t.Fatalf("page never reached %s; it shows:\n%s", cond, state)
}

func shot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(90))
	if err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	dir := t.ArtifactDir()
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Logf("screenshot: %v", err)
	}
}

// callIDFrom reads the call id `callproof call` printed.
func callIDFrom(t *testing.T, out string) string {
	t.Helper()
	var id string
	if _, err := fmt.Sscanf(out, "call %s", &id); err != nil {
		t.Fatalf("no call id in output:\n%s", out)
	}
	return id
}

// A caller in a real browser: /phone places a WebRTC call to the server, the keypad sends the
// answers as RFC 4733 events (keyed ahead, as a caller who knows the questions would), the
// caller is verified and the agent stream receives the token.
func TestPhonePageCallerVerified(t *testing.T) {
	exe := chromium(t)
	n := startNode(t, nil)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe),
		chromedp.Flag("headless", "new"), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("use-fake-device-for-media-stream", true), chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true), chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("no-first-run", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	tab, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	agentConn := dialAgent(t, n.url, "")
	defer agentConn.Close()

	if err := chromedp.Do(tab, chromedp.Navigate(n.url+"/phone?request=know_categories&lang=en-US&account=40001234"),
		chromedp.WaitVisible(chromedp.ID("call")), chromedp.Click(chromedp.ID("call"))); err != nil {
		t.Fatalf("place the call: %v", err)
	}
	waitFor(t, tab, `document.body.dataset.state === "connected"`)
	// Own information (1); the browser has no attested number, so the flow steps up to three
	// questions: date of birth, ZIP, SSN last 4.
	for _, d := range "1" + "07141985" + "94107" + "6789" {
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`#keypad button[data-digit="`+string(d)+`"]`))); err != nil {
			t.Fatalf("press %c: %v", d, err)
		}
	}
	var token, call string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && token == "" {
		m := readAgent(t, agentConn)
		if m.Transport == "webrtc" {
			call = m.Call
		}
		if m.Type == "not_verified" && m.Call == call {
			t.Fatalf("browser caller not verified: %s", m.Reason)
		}
		if m.Type == "verified" && m.Call == call {
			token = m.Token
		}
	}
	if token == "" {
		t.Fatal("the agent stream never received a token for the browser call")
	}
	o := callOptions{server: n.url, issuer: "callproof", audience: "callproof-agent"}
	v, err := checkToken(context.Background(), o, token)
	if err != nil || v.Subject != "cus_ada" || v.Call != call {
		t.Fatalf("token: %+v %v", v, err)
	}
	t.Logf("browser call %s verified: acr %s amr %v", call, v.ACR, v.AMR)
}
