package twilio

import (
	"bytes"
	"encoding/xml"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestSignatureVectors checks Signature against the worked examples of Twilio's webhook
// security documentation and of twilio-node's test suite.
func TestSignatureVectors(t *testing.T) {
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	for _, tc := range []struct{ caller, want string }{
		{"+14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="},
		{"+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
	} {
		params := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {tc.caller}, "Digits": {"1234"},
			"From": {tc.caller}, "To": {"+18005551212"}}
		if got := Signature("12345", u, params); got != tc.want {
			t.Errorf("Signature = %q, want %q", got, tc.want)
		}
		if !ValidSignature("12345", u, params, tc.want) {
			t.Errorf("ValidSignature rejected the documented signature")
		}
		if ValidSignature("12346", u, params, tc.want) || ValidSignature("12345", u, params, "") {
			t.Errorf("ValidSignature accepted a wrong token or an empty signature")
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"full", Config{AuthToken: "t", PublicURL: "https://cp.example.com/prefix", ReadLimit: 4096, StartTimeout: 1}, true},
		{"public url without scheme", Config{PublicURL: "cp.example.com"}, false},
		{"public url with query", Config{PublicURL: "https://cp.example.com/?a=1"}, false},
		{"public url ftp", Config{PublicURL: "ftp://cp.example.com"}, false},
		{"negative read limit", Config{ReadLimit: -1}, false},
		{"tiny read limit", Config{ReadLimit: 100}, false},
		{"huge read limit", Config{ReadLimit: 1 << 30}, false},
		{"negative start timeout", Config{StartTimeout: -1}, false},
		{"unknown dtmf mode", Config{DTMF: 9}, false},
		{"inband without detector", Config{DTMF: 2}, false},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestStreamURL(t *testing.T) {
	for _, tc := range []struct{ public, host, want string }{
		{"", "cp.example.com", "wss://cp.example.com/v1/twilio"},
		{"https://cp.example.com", "ignored", "wss://cp.example.com/v1/twilio"},
		{"https://cp.example.com/", "ignored", "wss://cp.example.com/v1/twilio"},
		{"http://127.0.0.1:8080", "ignored", "wss://127.0.0.1:8080/v1/twilio"},
		{"https://example.com/callproof", "ignored", "wss://example.com/callproof/v1/twilio"},
	} {
		if got := StreamURL(tc.public, tc.host); got != tc.want {
			t.Errorf("StreamURL(%q, %q) = %q, want %q", tc.public, tc.host, got, tc.want)
		}
	}
}

// voiceForm is a voice webhook body as Twilio posts it, with awkward characters in the values
// that reach the TwiML.
func voiceForm() url.Values {
	return url.Values{
		"AccountSid":  {"AC0123456789abcdef0123456789abcdef"},
		"CallSid":     {"CA0123456789abcdef0123456789abcdef"},
		"From":        {"+14155550100"},
		"To":          {"+18005550199"},
		"Direction":   {"inbound"},
		"StirVerstat": {`TN-Validation-Passed-A"<&>'`},
		"CallToken":   {"%7B%22parentCallInfoToken%22%3A%22eyJ...%22%7D"},
	}
}

func postVoice(t *testing.T, h http.Handler, target string, form url.Values, sig string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		req.Header.Set("X-Twilio-Signature", sig)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestVoiceTwiML compares the webhook's TwiML with testdata/voice.golden.xml (go test -update
// rewrites it).
func TestVoiceTwiML(t *testing.T) {
	h := VoiceHandler(Config{PublicURL: "https://cp.example.com"})
	rec := postVoice(t, h, "https://cp.example.com/v1/twilio/voice?request=delete&lang=es-US", voiceForm(), "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
		t.Errorf("Content-Type %q", ct)
	}
	got := rec.Body.Bytes()
	golden := filepath.Join("testdata", "voice.golden.xml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("TwiML differs from %s:\n got: %s\nwant: %s", golden, got, want)
	}
	// And it parses back to the values that went in.
	var doc twiml
	if err := xml.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	params := map[string]string{}
	for _, p := range doc.Connect.Stream.Params {
		params[p.Name] = p.Value
	}
	if doc.Connect.Stream.URL != "wss://cp.example.com/v1/twilio" || params["verstat"] != `TN-Validation-Passed-A"<&>'` ||
		params["from"] != "+14155550100" || params["to"] != "+18005550199" || params["request"] != "delete" || params["lang"] != "es-US" {
		t.Errorf("TwiML parses to %+v", doc.Connect.Stream)
	}
}

func TestVoiceHostFromRequest(t *testing.T) {
	h := VoiceHandler(Config{})
	form := url.Values{"From": {"+14155550100"}, "To": {"+18005550199"}, "lang": {"en-US"}}
	rec := postVoice(t, h, "http://node7.internal:8080/v1/twilio/voice", form, "")
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, `url="wss://node7.internal:8080/v1/twilio"`) ||
		!strings.Contains(body, `<Parameter name="lang" value="en-US"></Parameter>`) || strings.Contains(body, `name="request"`) {
		t.Errorf("status %d, body %s", rec.Code, body)
	}
}

// TestVoiceSignature: with an auth token the webhook needs Twilio's signature over the public
// URL (query included) and the POST parameters, with or without StirVerstat and CallToken.
func TestVoiceSignature(t *testing.T) {
	const token = "tw-auth-token"
	const target = "https://cp.example.com/v1/twilio/voice?request=delete"
	h := VoiceHandler(Config{AuthToken: token, PublicURL: "https://cp.example.com"})
	full := voiceForm()
	stripped := voiceForm()
	stripped.Del("StirVerstat")
	stripped.Del("CallToken")
	for _, tc := range []struct {
		name string
		sig  string
		want int
	}{
		{"all parameters", Signature(token, target, full), http.StatusOK},
		{"without StirVerstat and CallToken", Signature(token, target, stripped), http.StatusOK},
		{"absent", "", http.StatusForbidden},
		{"wrong token", Signature("other", target, full), http.StatusForbidden},
		{"query left out", Signature(token, "https://cp.example.com/v1/twilio/voice", full), http.StatusForbidden},
		{"other parameters", Signature(token, target, url.Values{"From": {"+1"}}), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := postVoice(t, h, target, full, tc.sig)
			if rec.Code != tc.want {
				t.Errorf("status %d, want %d", rec.Code, tc.want)
			}
			if tc.want != http.StatusOK && strings.Contains(rec.Body.String(), "Connect") {
				t.Errorf("rejected request got TwiML")
			}
		})
	}
}

func TestVoiceBadRequests(t *testing.T) {
	h := VoiceHandler(Config{})
	req := httptest.NewRequest(http.MethodGet, "/v1/twilio/voice", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d", rec.Code)
	}
	rec = postVoice(t, h, "/v1/twilio/voice", url.Values{"request": {strings.Repeat("x", 100)}}, "")
	if rec.Code != http.StatusBadRequest {
		t.Errorf("long request value: status %d", rec.Code)
	}
	req = httptest.NewRequest(http.MethodPost, "/v1/twilio/voice", io.LimitReader(zeros{}, 1<<20))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("1 MiB body: status %d", rec.Code)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}
