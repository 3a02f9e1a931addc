package agent_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/callproof/callproof/sessions/agent"
)

const (
	cspNone = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
		"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	htmlType = "text/html; charset=utf-8"
	jsType   = "text/javascript; charset=utf-8"
	cssType  = "text/css; charset=utf-8"
)

func cspWith(ancestors string) string {
	return strings.TrimSuffix(cspNone, "'none'") + ancestors
}

type pageResponse struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) pageResponse {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return pageResponse{status: res.StatusCode, header: res.Header, body: string(body)}
}

// assertSecurityHeaders checks the headers every page response carries, exactly.
func assertSecurityHeaders(t *testing.T, r pageResponse, csp string) {
	t.Helper()
	for name, want := range map[string]string{
		"Content-Security-Policy": csp,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := r.header.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want exactly %q", name, got, want)
		}
	}
}

func TestPageRoutes(t *testing.T) {
	h := agent.PageHandler()
	tests := []struct {
		name     string
		method   string
		target   string
		status   int
		ctype    string
		contains []string
		absent   []string
	}{
		{name: "page", method: "GET", target: "/agent", status: 200, ctype: htmlType,
			contains: []string{`<script type="module" src="/agent/app.js"></script>`,
				`<link rel="stylesheet" href="/agent/app.css">`, `data-mode="all"`, `data-call=""`,
				`data-issuer="callproof"`, `data-audience="callproof-agent"`, `data-parent-origins=""`,
				`type="password"`, `aria-live="polite"`}},
		{name: "page with slash", method: "GET", target: "/agent/", status: 200, ctype: htmlType,
			contains: []string{`data-mode="all"`}},
		{name: "head page", method: "HEAD", target: "/agent", status: 200, ctype: htmlType},
		{name: "script", method: "GET", target: "/agent/app.js", status: 200, ctype: jsType,
			contains: []string{"crypto.subtle.verify", "importKey('jwk'", "/.well-known/jwks.json", "/v1/tokens/redeem"}},
		{name: "head script", method: "HEAD", target: "/agent/app.js", status: 200, ctype: jsType},
		{name: "style", method: "GET", target: "/agent/app.css", status: 200, ctype: cssType,
			contains: []string{":focus-visible", ".visually-hidden"}},
		{name: "embed", method: "GET", target: "/agent/call/CA0123456789abcdef", status: 200, ctype: htmlType,
			contains: []string{`data-mode="call"`, `data-call="CA0123456789abcdef"`, "<title>Call CA0123456789abcdef · Callproof agent</title>"}},
		{name: "embed id is escaped", method: "GET", target: "/agent/call/%22%3E%3Cscript%3Ex%3C%2Fscript%3E", status: 200, ctype: htmlType,
			contains: []string{`data-mode="call"`}, absent: []string{`"><script>x</script>`, "<script>x"}},
		{name: "embed without id", method: "GET", target: "/agent/call/", status: 404},
		{name: "embed id with a space", method: "GET", target: "/agent/call/a%20b", status: 404},
		{name: "embed id too long", method: "GET", target: "/agent/call/" + strings.Repeat("x", 129), status: 404},
		{name: "embed nested path", method: "GET", target: "/agent/call/a/b", status: 404},
		{name: "unknown asset", method: "GET", target: "/agent/other.js", status: 404},
		{name: "post", method: "POST", target: "/agent", status: 405},
		{name: "post embed", method: "POST", target: "/agent/call/CA1", status: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, h, tc.method, tc.target, nil)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (body %q)", r.status, tc.status, r.body)
			}
			assertSecurityHeaders(t, r, cspNone) // errors too: nothing leaves without the policy
			if tc.ctype != "" {
				if got := r.header.Get("Content-Type"); got != tc.ctype {
					t.Errorf("Content-Type %q, want %q", got, tc.ctype)
				}
				if got := r.header.Get("Cache-Control"); got != "no-cache" {
					t.Errorf("Cache-Control %q, want no-cache", got)
				}
			}
			if tc.method == "HEAD" && r.body != "" {
				t.Errorf("HEAD returned a body of %d bytes", len(r.body))
			}
			for _, s := range tc.contains {
				if !strings.Contains(r.body, s) {
					t.Errorf("body lacks %q", s)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(r.body, s) {
					t.Errorf("body contains %q", s)
				}
			}
		})
	}
}

func TestPageRevalidation(t *testing.T) {
	h := agent.PageHandler()
	for _, target := range []string{"/agent", "/agent/app.js", "/agent/app.css", "/agent/call/CA1"} {
		first := get(t, h, "GET", target, nil)
		etag := first.header.Get("ETag")
		if !regexp.MustCompile(`^"[0-9a-f]{32}"$`).MatchString(etag) {
			t.Fatalf("%s: ETag %q, want a quoted content hash", target, etag)
		}
		again := get(t, h, "GET", target, map[string]string{"If-None-Match": etag})
		if again.status != http.StatusNotModified || again.body != "" {
			t.Errorf("%s: revalidation gave %d with %d bytes, want 304 and no body", target, again.status, len(again.body))
		}
		assertSecurityHeaders(t, again, cspNone)
	}
	if a, b := get(t, h, "GET", "/agent/call/CA1", nil), get(t, h, "GET", "/agent/call/CA2", nil); a.header.Get("ETag") == b.header.Get("ETag") {
		t.Error("two calls' panels share an ETag")
	}
}

func TestPageFrameAncestors(t *testing.T) {
	tests := []struct {
		name    string
		origins []string
		want    string // frame-ancestors of /agent/call/{id}, and data-parent-origins
	}{
		{name: "default", origins: nil, want: ""},
		{name: "one", origins: []string{"https://crm.example.com"}, want: "https://crm.example.com"},
		{name: "normalised and deduplicated", origins: []string{"HTTPS://CRM.Example.com/", "https://crm.example.com", " http://localhost:3000 ", "https://[::1]:8443"},
			want: "https://crm.example.com http://localhost:3000 https://[::1]:8443"},
		{name: "unsafe entries dropped", origins: []string{
			"https://crm.example.com",
			"https://evil.example; script-src *",
			"https://evil.example 'unsafe-inline'",
			"javascript:alert(1)",
			"data:text/html,x",
			"*",
			"'self'",
			"https://*.example.com",
			"https://crm.example.com/path",
			"https://crm.example.com?q=1",
			"https://crm.example.com#x",
			"https://user:pw@crm.example.com",
			"https://crm.example.com:80x",
			"https://crm.example.com:",
			"crm.example.com",
			"",
		}, want: "https://crm.example.com"},
		{name: "only unsafe entries", origins: []string{"https://a.example;", "ftp://files.example"}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := agent.PageHandler(agent.WithFrameAncestors(tc.origins...))
			wantCSP := cspNone
			if tc.want != "" {
				wantCSP = cspWith(tc.want)
			}
			embed := get(t, h, "GET", "/agent/call/CA1", nil)
			assertSecurityHeaders(t, embed, wantCSP)
			if want := `data-parent-origins="` + tc.want + `"`; !strings.Contains(embed.body, want) {
				t.Errorf("embed page lacks %s", want)
			}
			// The full page and the assets are never frameable, nor told about parents.
			for _, target := range []string{"/agent", "/agent/app.js", "/agent/app.css", "/agent/nope"} {
				r := get(t, h, "GET", target, nil)
				assertSecurityHeaders(t, r, cspNone)
				if strings.Contains(r.body, "data-parent-origins") && !strings.Contains(r.body, `data-parent-origins=""`) {
					t.Errorf("%s names parent origins", target)
				}
			}
		})
	}
}

func TestPageTokenIssuer(t *testing.T) {
	h := agent.PageHandler(agent.WithTokenIssuer("https://verify.example.com", "crm-desk"))
	for _, target := range []string{"/agent", "/agent/call/CA1"} {
		r := get(t, h, "GET", target, nil)
		for _, s := range []string{`data-issuer="https://verify.example.com"`, `data-audience="crm-desk"`} {
			if !strings.Contains(r.body, s) {
				t.Errorf("%s lacks %s", target, s)
			}
		}
	}
	r := get(t, agent.PageHandler(agent.WithTokenIssuer("", "")), "GET", "/agent", nil)
	if !strings.Contains(r.body, `data-issuer="callproof"`) || !strings.Contains(r.body, `data-audience="callproof-agent"`) {
		t.Error("empty WithTokenIssuer values did not keep the defaults")
	}
}

// TestPageAssetsAvoidUnsafeAPIs keeps the page inside its CSP and its privacy promise: no
// inline script or style, no event-handler attributes, nothing from another origin, no web
// storage or cookies for the key, no HTML parsing of server data, no eval.
func TestPageAssetsAvoidUnsafeAPIs(t *testing.T) {
	h := agent.PageHandler(agent.WithFrameAncestors("https://crm.example.com"))
	html := get(t, h, "GET", "/agent/call/CA1", nil).body
	js := get(t, h, "GET", "/agent/app.js", nil).body
	css := get(t, h, "GET", "/agent/app.css", nil).body
	checks := []struct {
		name, body string
		bad        *regexp.Regexp
	}{
		{"html: inline script", html, regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)},
		{"html: style element", html, regexp.MustCompile(`(?i)<style`)},
		{"html: style attribute", html, regexp.MustCompile(`(?i)\sstyle=`)},
		{"html: event handler attribute", html, regexp.MustCompile(`(?i)\son[a-z]+=`)},
		{"html: javascript URL", html, regexp.MustCompile(`(?i)javascript:`)},
		{"html: other origin", html, regexp.MustCompile(`(?i)(src|href)="(https?:)?//`)},
		{"js: web storage", js, regexp.MustCompile(`localStorage|sessionStorage|indexedDB`)},
		{"js: cookies", js, regexp.MustCompile(`document\.cookie`)},
		{"js: HTML parsing", js, regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|DOMParser`)},
		{"js: eval", js, regexp.MustCompile(`\beval\(|new Function|setTimeout\(['"]`)},
		{"js: inline style", js, regexp.MustCompile(`\.style\b|setAttribute\(['"]style`)},
		{"js: other origin", js, regexp.MustCompile(`https?://`)},
		{"css: other origin", css, regexp.MustCompile(`(?i)@import|url\(`)},
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if tag != `<script type="module" src="/agent/app.js">` {
			t.Errorf("html: unexpected script element %s", tag)
		}
	}
	for _, c := range checks {
		if loc := c.bad.FindStringIndex(c.body); loc != nil {
			t.Errorf("%s: %q", c.name, c.body[loc[0]:min(loc[1]+40, len(c.body))])
		}
	}
}
