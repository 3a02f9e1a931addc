package webrtc

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/callproof/callproof/media"
)

// chromiumPath finds the browser: $CALLPROOF_CHROMIUM, /usr/bin/chromium, or chromium on PATH.
func chromiumPath() (string, error) {
	if p := os.Getenv("CALLPROOF_CHROMIUM"); p != "" {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", nil
	}
	return exec.LookPath("chromium")
}

// TestBrowserPhone drives the /phone page in headless Chromium with fake media devices. In each
// case the page calls, hears the welcome prompt, presses keys on the keypad and the keyboard,
// and sees the call end when the flow hangs up; the flow must get each digit exactly once, as
// an RFC 4733 event on the payload type Chromium chose. The first case also checks the demo
// inbox hook and saves a screenshot to testdata/phone.png; the second denies the microphone, so
// the page calls keypad-only with a silent track (and Chromium hides its addresses behind mDNS
// names, which the server ignores: it finds the browser by its connectivity checks).
func TestBrowserPhone(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped under -short; it needs Chromium (scripts/test.sh installs it)")
	}
	chromium, err := chromiumPath()
	if err != nil {
		t.Fatalf("Chromium not found (%v): install it (Debian: apt-get install chromium) or set CALLPROOF_CHROMIUM; scripts/test.sh installs it", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.Flag("headless", "new"),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(520, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil { // starts the browser; no timeout on this first call
		t.Fatalf("start Chromium at %s: %v", chromium, err)
	}
	t.Run("microphone", func(t *testing.T) {
		phoneCall(t, browser, phoneCase{keys: "122", inbox: true, screenshot: "testdata/phone.png", status: "Connected"})
	})
	t.Run("keypad only", func(t *testing.T) {
		phoneCall(t, browser, phoneCase{keys: "90", denyMic: true, status: "Connected (no microphone: keypad only)"})
	})
}

type phoneCase struct {
	keys       string // clicked on the keypad; '#' follows from the keyboard
	denyMic    bool   // getUserMedia fails, as when the user refuses
	inbox      bool   // serve a demo inbox, then turn it off
	screenshot string // where to save a screenshot taken while connected
	status     string // the status text while connected
}

// flowResult is what the scripted flow saw.
type flowResult struct {
	start   *media.Start
	digits  string
	sources []media.DigitSource
	marks   []string
	err     error
}

func phoneCall(t *testing.T, browser context.Context, pc phoneCase) {
	welcome := toneClip(t, "welcome", 440, 600*time.Millisecond)
	goodbye := toneClip(t, "goodbye", 660, 400*time.Millisecond)
	result := make(chan flowResult, 1)
	gotHash := make(chan struct{})
	release := make(chan struct{})
	// The flow: welcome, digits until '#', goodbye, then (once the test has looked at the page)
	// hang up. It keeps reading events until the end, so a duplicate digit would be seen.
	ts := newTestServer(t, Config{}, func(ctx context.Context, leg media.Leg) {
		var r flowResult
		defer func() { result <- r }()
		hung := false
		for ev := range leg.Events() {
			switch ev.Type {
			case media.EventStart:
				r.start = ev.Start
				_ = leg.Play(welcome, "welcome")
			case media.EventDTMF:
				r.digits += string(ev.Digit)
				r.sources = append(r.sources, ev.Source)
				if ev.Digit == '#' {
					close(gotHash)
					_ = leg.Play(goodbye, "goodbye")
				}
			case media.EventMark:
				r.marks = append(r.marks, ev.Mark)
				if ev.Mark == "goodbye" && !hung {
					hung = true
					select {
					case <-release:
					case <-ctx.Done():
					}
					_ = leg.Hangup("done")
				}
			case media.EventHangup:
				r.err = ev.Err
			}
		}
	})
	var inboxOn atomic.Bool
	inboxOn.Store(pc.inbox)
	ts.mux.HandleFunc("GET /v1/demo/inbox", func(w http.ResponseWriter, r *http.Request) {
		if !inboxOn.Load() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"messages":[{"to":"***0100","channel":"sms","code":"492817","expires_at":"2030-01-01T12:05:00Z"}]}`))
	})

	tab, cancelTab := chromedp.NewContext(browser)
	defer cancelTab()
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	var (
		console      sync.WaitGroup
		consoleMu    sync.Mutex
		consoleLines []string
	)
	console.Add(1)
	go func() {
		defer console.Done()
		for m, err := range chromedp.Console(tab) {
			if err != nil {
				return
			}
			consoleMu.Lock()
			consoleLines = append(consoleLines, string(m.Type)+": "+m.Text)
			consoleMu.Unlock()
		}
	}()
	defer func() {
		cancelTab()
		console.Wait()
		if t.Failed() {
			consoleMu.Lock()
			for _, l := range consoleLines {
				t.Log("page console", l)
			}
			consoleMu.Unlock()
		}
	}()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	state := func() string {
		s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.state + ": " + document.getElementById("status").textContent`))
		return s
	}
	waitState := func(want string, d time.Duration) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.state === "`+want+`"`,
			chromedp.WithPollingTimeout(d))); err != nil {
			t.Fatalf("page state never became %s (now %q): %v", want, state(), err)
		}
	}
	status := func() string {
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
		return s
	}

	if pc.denyMic {
		if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("denied", "NotAllowedError"));`,
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+PagePath+"?request=delete&lang=en-US"),
		chromedp.WaitVisible(chromedp.ID("call")),
	); err != nil {
		t.Fatalf("load /phone: %v", err)
	}
	if pc.inbox {
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#inbox li"))); err != nil {
			t.Fatalf("demo inbox never showed: %v", err)
		}
		if txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("inbox"))); err != nil || !strings.Contains(txt, "492817") {
			t.Errorf("inbox text %q (%v), want the demo passcode", txt, err)
		}
	}
	if s := status(); s != "Ready to call" {
		t.Errorf("idle status %q", s)
	}

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("call"))); err != nil {
		t.Fatal(err)
	}
	waitState("connected", 15*time.Second)
	if s := status(); s != pc.status {
		t.Errorf("status %q, want %q", s, pc.status)
	}
	for _, d := range pc.keys {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#keypad button[data-digit="`+string(d)+`"]`))); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent("#")); err != nil { // digits typed anywhere count
		t.Fatal(err)
	}
	select {
	case <-gotHash:
	case <-time.After(10 * time.Second):
		t.Fatalf("the flow got no '#' within 10s (page: %q)", state())
	}
	want := pc.keys + "#"
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`Number(document.getElementById("keyed").dataset.count)`)); n != len(want) {
		t.Errorf("page counted %d key presses, want %d", n, len(want))
	}
	if pc.screenshot != "" {
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
			t.Errorf("screenshot: %v", err)
		} else if err := os.WriteFile(pc.screenshot, png, 0o644); err != nil {
			t.Errorf("save screenshot: %v", err)
		}
	}
	close(release)
	waitState("ended", 10*time.Second) // the server's DTLS close_notify reaches the page
	if s := status(); s != "Call ended" {
		t.Errorf("status after the flow hung up: %q", s)
	}

	var r flowResult
	select {
	case r = <-result:
	case <-time.After(5 * time.Second):
		t.Fatal("the flow did not finish")
	}
	if r.digits != want {
		t.Errorf("flow got digits %q, want %q (each key press exactly once)", r.digits, want)
	}
	for _, s := range r.sources {
		if s != media.SourceRFC4733 {
			t.Errorf("digit source %s, want rfc4733", s)
		}
	}
	if strings.Join(r.marks, ",") != "welcome,goodbye" {
		t.Errorf("marks %v", r.marks)
	}
	if r.start == nil || r.start.Transport != "webrtc" || r.start.From != "" ||
		r.start.Param("request") != "delete" || r.start.Param("lang") != "en-US" {
		t.Errorf("start %+v", r.start)
	}
	if !errors.Is(r.err, media.ErrLegClosed) {
		t.Errorf("leg ended with %v, want the flow's hangup", r.err)
	}

	if pc.inbox { // demo mode off: the next poll's 404 hides the inbox
		inboxOn.Store(false)
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("inbox").hidden`,
			chromedp.WithPollingTimeout(5*time.Second))); err != nil {
			t.Errorf("inbox still shown after /v1/demo/inbox answered 404: %v", err)
		}
	} else if hidden, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("inbox").hidden`)); !hidden {
		t.Error("inbox shown although /v1/demo/inbox answers 404")
	}
}
