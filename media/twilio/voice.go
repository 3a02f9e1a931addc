package twilio

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
)

// maxVoiceBody bounds the webhook's form body; Twilio's is a few kilobytes.
const maxVoiceBody = 64 << 10

// maxParam bounds the request and lang values passed through to the stream.
const maxParam = 64

// twiml is the response to the voice webhook (telephony-protocols §1.1).
type twiml struct {
	XMLName xml.Name `xml:"Response"`
	Connect struct {
		Stream struct {
			URL    string      `xml:"url,attr"`
			Params []Parameter `xml:"Parameter"`
		} `xml:"Stream"`
	} `xml:"Connect"`
}

// Parameter is one <Parameter> of the <Stream>; it reaches the stream as a customParameter.
type Parameter struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// VoiceHandler serves POST /v1/twilio/voice, the call's voice webhook. It checks
// X-Twilio-Signature when cfg.AuthToken is set (403 otherwise) and answers with TwiML that
// connects the call to the media stream at StreamURL, passing the caller's From, To and
// StirVerstat as the from, to and verstat parameters, and request and lang when the webhook URL's
// query or the form carries them.
//
// The signed URL is cfg.PublicURL + /v1/twilio/voice plus the request's query; without a
// PublicURL it is built from the Host header, with https or http. A signature computed with or
// without the StirVerstat and CallToken parameters is accepted (telephony-protocols §1.7).
func VoiceHandler(cfg Config) http.Handler {
	verr := cfg.Validate()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if verr != nil {
			http.Error(w, "voice webhook misconfigured", http.StatusInternalServerError)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxVoiceBody)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		if cfg.AuthToken != "" && !validVoiceSignature(cfg, r) {
			http.Error(w, "invalid X-Twilio-Signature", http.StatusForbidden)
			return
		}
		params := []Parameter{
			{Name: "from", Value: r.PostForm.Get("From")},
			{Name: "to", Value: r.PostForm.Get("To")},
			{Name: "verstat", Value: r.PostForm.Get("StirVerstat")},
		}
		for _, name := range []string{"request", "lang"} {
			v := r.Form.Get(name) // the body's value, else the query's
			if v == "" {
				continue
			}
			if len(v) > maxParam {
				http.Error(w, name+" is too long", http.StatusBadRequest)
				return
			}
			params = append(params, Parameter{Name: name, Value: v})
		}
		body, err := TwiML(StreamURL(cfg.PublicURL, r.Host), params)
		if err != nil {
			http.Error(w, "cannot render TwiML", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write(body)
	})
}

// TwiML renders <Response><Connect><Stream url=streamURL> with params, XML-escaped.
func TwiML(streamURL string, params []Parameter) ([]byte, error) {
	var t twiml
	t.Connect.Stream.URL = streamURL
	t.Connect.Stream.Params = params
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(t); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// validVoiceSignature checks the webhook's signature over the public URL and the POST
// parameters, with and without StirVerstat and CallToken.
func validVoiceSignature(cfg Config, r *http.Request) bool {
	sig := r.Header.Get("X-Twilio-Signature")
	if sig == "" {
		return false
	}
	var bases []string
	if cfg.PublicURL != "" {
		bases = []string{strings.TrimSuffix(cfg.PublicURL, "/")}
	} else {
		bases = []string{"https://" + r.Host, "http://" + r.Host}
	}
	stripped := url.Values{}
	for k, v := range r.PostForm {
		if k != "StirVerstat" && k != "CallToken" {
			stripped[k] = v
		}
	}
	ok := false
	for _, base := range bases {
		u := base + VoicePath
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		// Evaluate every candidate so timing does not tell which one matched.
		if ValidSignature(cfg.AuthToken, u, r.PostForm, sig) {
			ok = true
		}
		if ValidSignature(cfg.AuthToken, u, stripped, sig) {
			ok = true
		}
	}
	return ok
}
