package webrtc

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestPageHandler(t *testing.T) {
	srv := httptest.NewServer(PageHandler())
	defer srv.Close()
	get := func(path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, tt := range []struct{ path, ctype string }{
		{PagePath, "text/html; charset=utf-8"},
		{ScriptPath, "text/javascript; charset=utf-8"},
		{StylePath, "text/css; charset=utf-8"},
	} {
		resp, body := get(tt.path, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tt.ctype || body == "" {
			t.Errorf("GET %s: %d %q (%d bytes)", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", tt.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("CSP allows something unsafe: %q", csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tt.path)
		}
		etag := resp.Header.Get("ETag")
		if again, _ := get(tt.path, map[string]string{"If-None-Match": etag}); etag == "" || again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %q: %d, want 304", tt.path, etag, again.StatusCode)
		}
	}
	if resp, _ := get("/phone/../etc/passwd", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+PagePath, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /phone: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
}

// TestPageHasNoInlineCode keeps the page compatible with its CSP: every script is external,
// there is no style element or attribute and no inline event handler; the script builds the
// inbox with textContent, never markup.
func TestPageHasNoInlineCode(t *testing.T) {
	html, _ := assets.ReadFile("assets/phone.html")
	js, _ := assets.ReadFile("assets/phone.js")
	page := string(html)
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(m, `src="/phone.js"`) {
			t.Errorf("inline script: %s", m)
		}
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<style`), regexp.MustCompile(`\sstyle=`), regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`javascript:`), regexp.MustCompile(`https?://`),
	} {
		if loc := bad.FindStringIndex(page); loc != nil {
			t.Errorf("phone.html has %q", page[loc[0]:loc[1]])
		}
	}
	for _, id := range []string{`id="call"`, `id="hangup"`, `id="keypad"`, `id="status"`, `id="inbox"`, `role="status"`, `data-inbox="/v1/demo/inbox"`} {
		if !strings.Contains(page, id) {
			t.Errorf("phone.html lacks %s", id)
		}
	}
	if strings.Count(page, "data-digit=") != 12 {
		t.Error("keypad does not have 12 keys")
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "eval(", "new Function", "document.write", ".style."} {
		if strings.Contains(string(js), bad) {
			t.Errorf("phone.js uses %s", bad)
		}
	}
}
