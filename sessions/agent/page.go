package agent

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The agent page: GET /agent (every call), GET /agent/call/{id} (one call's panel, for
// embedding in a CRM) and their two assets, all compiled into the binary. The page is plain
// HTML, one CSS file and one JavaScript module: no CDN, no build step, no inline script or
// style, so the strict Content-Security-Policy below holds on every response.
//
// In the browser the page signs in with an agent key typed into a password field (or, when
// embedded, posted by the framing CRM with postMessage from an allowed origin), keeps it in
// memory only, connects to GET /v1/agent on the same origin with access_token, subscribes
// (to all calls, or to the embedded one) and resumes after the last event id it saw when it
// reconnects. It checks each token's Ed25519 signature itself with WebCrypto against
// GET /.well-known/jwks.json, plus exp, nbf, iss, aud and the call claim, and redeems a token
// with POST /v1/tokens/redeem.

//go:embed web/index.html web/app.js web/app.css
var webFS embed.FS

const (
	// The token claims the page requires by default: token.DefaultIssuer and
	// token.DefaultAudience (this package does not import sessions/token).
	pageIssuer   = "callproof"
	pageAudience = "callproof-agent"

	pageCallPath = "/agent/call/" // + call id
)

// pageCSP is the Content-Security-Policy of the agent page for these frame ancestors
// (normalised origins; none means 'none'): only same-origin scripts, styles and connections
// (fetch and WebSocket), nothing inline, no plugins, no base or form targets.
func pageCSP(frameAncestors ...string) string {
	fa := "'none'"
	if len(frameAncestors) > 0 {
		fa = strings.Join(frameAncestors, " ")
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
		"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors " + fa
}

type pageConfig struct {
	ancestors []string
	issuer    string
	audience  string
}

// PageOption configures PageHandler.
type PageOption func(*pageConfig)

// WithFrameAncestors lets pages from these origins ("https://crm.example.com") frame the
// one-call panel GET /agent/call/{id}, and send it the agent key with postMessage. Each
// origin must be http or https with a host and nothing after it (a trailing "/" is
// dropped); anything else is ignored, so a bad entry can only make framing stricter. The
// full page GET /agent is never frameable. Default: no origin ('none').
func WithFrameAncestors(origins ...string) PageOption {
	return func(c *pageConfig) {
		for _, o := range origins {
			n, ok := frameOrigin(o)
			if !ok {
				continue
			}
			dup := false
			for _, have := range c.ancestors {
				dup = dup || have == n
			}
			if !dup {
				c.ancestors = append(c.ancestors, n)
			}
		}
	}
}

// WithTokenIssuer sets the iss and aud the page requires of a token before it calls it
// valid: pass the signer's Config.Issuer and Config.Audience. Defaults "callproof" and
// "callproof-agent" (the signer's defaults); empty values keep them.
func WithTokenIssuer(issuer, audience string) PageOption {
	return func(c *pageConfig) {
		if issuer != "" {
			c.issuer = issuer
		}
		if audience != "" {
			c.audience = audience
		}
	}
}

// PageHandler serves the agent page: GET (and HEAD) /agent, /agent/app.js, /agent/app.css
// and /agent/call/{id}. Every response, errors included, carries the strict
// Content-Security-Policy, X-Content-Type-Options: nosniff and Referrer-Policy:
// no-referrer; only /agent/call/{id} names the WithFrameAncestors origins in
// frame-ancestors. The page needs GET /v1/agent, GET /.well-known/jwks.json and
// POST /v1/tokens/redeem on the same origin.
func PageHandler(opts ...PageOption) http.Handler {
	cfg := pageConfig{issuer: pageIssuer, audience: pageAudience}
	for _, o := range opts {
		o(&cfg)
	}
	p := &page{
		cfg:      cfg,
		tmpl:     template.Must(template.ParseFS(webFS, "web/index.html")),
		cspPage:  pageCSP(),
		cspEmbed: pageCSP(cfg.ancestors...),
	}
	p.js = newAsset("web/app.js", "text/javascript; charset=utf-8")
	p.css = newAsset("web/app.css", "text/css; charset=utf-8")
	var err error
	if p.index, err = p.render(pageData{Mode: "all"}); err != nil {
		panic("agent: page template: " + err.Error()) // embedded and tested: cannot happen
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /agent", p.serveIndex)
	mux.HandleFunc("GET /agent/{$}", p.serveIndex)
	mux.HandleFunc("GET /agent/app.js", p.js.serve)
	mux.HandleFunc("GET /agent/app.css", p.css.serve)
	mux.HandleFunc("GET /agent/call/{id}", p.serveCall)
	p.mux = mux
	return p
}

type page struct {
	cfg      pageConfig
	tmpl     *template.Template
	cspPage  string
	cspEmbed string
	index    *asset
	js, css  *asset
	mux      *http.ServeMux
}

// pageData is what index.html is rendered with; html/template escapes every field.
type pageData struct {
	Mode          string // "all" or "call"
	Call          string
	Issuer        string
	Audience      string
	ParentOrigins string // space-separated, for the postMessage origin check
}

func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	csp := p.cspPage
	if strings.HasPrefix(r.URL.Path, pageCallPath) {
		csp = p.cspEmbed
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	p.mux.ServeHTTP(w, r)
}

func (p *page) serveIndex(w http.ResponseWriter, r *http.Request) { p.index.serve(w, r) }

func (p *page) serveCall(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !pageCallID(id) {
		http.Error(w, "not found: want /agent/call/{call id}", http.StatusNotFound)
		return
	}
	a, err := p.render(pageData{Mode: "call", Call: id})
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	a.serve(w, r)
}

func (p *page) render(d pageData) (*asset, error) {
	d.Issuer, d.Audience = p.cfg.issuer, p.cfg.audience
	if d.Mode == "call" {
		d.ParentOrigins = strings.Join(p.cfg.ancestors, " ")
	}
	var b bytes.Buffer
	if err := p.tmpl.Execute(&b, d); err != nil {
		return nil, err
	}
	return assetOf(b.Bytes(), "text/html; charset=utf-8"), nil
}

// asset is one response body with its type and a strong ETag (the content's hash), served
// with Cache-Control: no-cache so browsers revalidate and get 304 while it is unchanged.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

func newAsset(name, ctype string) *asset {
	data, err := webFS.ReadFile(name)
	if err != nil {
		panic("agent: embedded " + name + ": " + err.Error()) // go:embed guarantees it
	}
	return assetOf(data, ctype)
}

func assetOf(data []byte, ctype string) *asset {
	sum := sha256.Sum256(data)
	return &asset{body: data, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
}

func (a *asset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// pageCallID accepts the call ids the agent WebSocket accepts: printable ASCII without
// spaces, up to 128 bytes. html/template escapes the id where the page shows it.
func pageCallID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// frameOrigin normalises an http(s) origin for frame-ancestors and the postMessage check,
// refusing anything that could add a CSP source or directive (spaces, ';', ',', quotes,
// wildcards, paths, queries, credentials).
func frameOrigin(o string) (string, bool) {
	o = strings.TrimSuffix(strings.TrimSpace(o), "/")
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" ||
		u.Fragment != "" || u.Opaque != "" || strings.Contains(o, "?") || strings.Contains(o, "#") {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host := strings.ToLower(u.Host)
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return "", false
		}
	}
	if port := u.Port(); port != "" {
		if strings.TrimLeft(port, "0123456789") != "" {
			return "", false
		}
	} else if strings.HasSuffix(host, ":") {
		return "", false
	}
	return scheme + "://" + host, true
}
