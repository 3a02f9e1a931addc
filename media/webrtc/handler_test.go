package webrtc

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// goOffer makes a real offer from a pion peer (the client's API) and closes the peer.
func goOffer(t *testing.T) string {
	t.Helper()
	o := clientOptions{codecs: []string{"PCMU", "PCMA"}, eventPT: 126, log: zap.NewNop()}
	api, err := clientAPI(&o)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.GracefulClose()
	if _, err := pc.AddTransceiverFromTrack(newG711Track("a", "s"), webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-done
	return pc.LocalDescription().SDP
}

func post(t *testing.T, url, ctype string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestBadOffers: every refusal has its status, leaves no call or peer connection behind (goleak
// checks the latter at the end of the package), and never echoes the offer.
func TestBadOffers(t *testing.T) {
	opusOnly := edit(t, "111 63 9 0 8 13 110 126", "111 110")
	tests := []struct {
		name   string
		cfg    Config
		ctype  string
		body   func() io.Reader
		path   string
		status int
	}{
		{"wrong content type", Config{}, "text/plain", func() io.Reader { return strings.NewReader(chromeOffer(t)) }, "", http.StatusUnsupportedMediaType},
		{"no content type", Config{}, "", func() io.Reader { return strings.NewReader(chromeOffer(t)) }, "", http.StatusUnsupportedMediaType},
		{"garbage", Config{}, "application/sdp", func() io.Reader { return strings.NewReader("hello") }, "", http.StatusBadRequest},
		{"no audio", Config{}, "application/sdp", func() io.Reader {
			return strings.NewReader(edit(t, "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126", "m=video 9 UDP/TLS/RTP/SAVPF 96"))
		}, "", http.StatusBadRequest},
		{"no G.711", Config{}, "application/sdp", func() io.Reader { return strings.NewReader(opusOnly) }, "", http.StatusNotAcceptable},
		{"receive only", Config{}, "application/sdp", func() io.Reader { return strings.NewReader(edit(t, "a=sendrecv", "a=recvonly")) }, "", http.StatusNotAcceptable},
		{"no ICE credentials (pion refuses)", Config{}, "application/sdp; charset=utf-8", func() io.Reader {
			return strings.NewReader(strings.Replace(edit(t, "a=ice-ufrag:Xq3d\r\n", ""), "a=ice-pwd:p0Cxq0F4y0h2k8CqfKtXq3dA\r\n", "", 1))
		}, "", http.StatusBadRequest},
		{"too large", Config{MaxOfferBytes: 1024}, "application/sdp", func() io.Reader { return strings.NewReader(chromeOffer(t)) }, "", http.StatusRequestEntityTooLarge},
		{"too large, chunked", Config{MaxOfferBytes: 1024}, "application/sdp", func() io.Reader { return io.MultiReader(strings.NewReader(chromeOffer(t))) }, "", http.StatusRequestEntityTooLarge},
		{"bad parameter", Config{}, "application/sdp", func() io.Reader { return strings.NewReader(chromeOffer(t)) }, "?lang=en%0AUS", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, tt.cfg, nil)
			resp, body := post(t, ts.URL+OfferPath+tt.path, tt.ctype, tt.body())
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, strings.TrimSpace(body), tt.status)
			}
			if strings.Contains(body, "a=") || strings.Contains(body, "v=0") {
				t.Errorf("error body echoes SDP: %q", body)
			}
			if resp.Header.Get("Location") != "" {
				t.Error("a refusal has a Location")
			}
			if n := ts.h.Calls(); n != 0 {
				t.Errorf("%d calls live after a refusal", n)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	ts := newTestServer(t, Config{OffersPerMinute: 2}, nil)
	for i, want := range []int{http.StatusBadRequest, http.StatusBadRequest, http.StatusTooManyRequests} {
		resp, _ := post(t, ts.URL+OfferPath, "application/sdp", strings.NewReader("garbage counts too"))
		if resp.StatusCode != want {
			t.Fatalf("offer %d: status %d, want %d", i+1, resp.StatusCode, want)
		}
		if want == http.StatusTooManyRequests {
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
		}
	}
	// The content-type check comes first and is not counted.
	if resp, _ := post(t, ts.URL+OfferPath, "text/plain", strings.NewReader("x")); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("status %d, want 415", resp.StatusCode)
	}
}

func TestMethods(t *testing.T) {
	ts := newTestServer(t, Config{}, nil)
	h := ts.h
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, OfferPath, http.StatusMethodNotAllowed},
		{http.MethodPut, OfferPath, http.StatusMethodNotAllowed},
		{http.MethodDelete, OfferPath + "/0123456789abcdef0123456789abcdef", http.StatusNotFound},
		{http.MethodDelete, OfferPath + "/", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tt.method, "http://x"+tt.path, nil)
		rw := &recorderRW{header: http.Header{}}
		h.ServeHTTP(rw, req)
		if rw.status != tt.status {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, rw.status, tt.status)
		}
	}
}

type recorderRW struct {
	header http.Header
	status int
}

func (r *recorderRW) Header() http.Header         { return r.header }
func (r *recorderRW) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorderRW) WriteHeader(s int)           { r.status = s }

// TestAnswer checks the answer to a real offer: status and headers, the negotiated codecs, and
// the candidates' addresses and ports from the config. Then DELETE ends the unconnected call.
func TestAnswer(t *testing.T) {
	ts := newTestServer(t, Config{PortMin: 42100, PortMax: 42199, PublicIPs: []string{"203.0.113.7"}}, nil)
	offer := edit(t, "a=rtpmap:126 telephone-event/8000", "a=rtpmap:126 telephone-event/8000\r\na=fmtp:126 0-15")
	resp, answer := post(t, ts.URL+OfferPath+"?request=opt_out", "application/sdp", strings.NewReader(offer))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Errorf("Content-Type %q", ct)
	}
	loc := resp.Header.Get("Location")
	if !regexp.MustCompile(`^/v1/webrtc/[0-9a-f]{32}$`).MatchString(loc) {
		t.Errorf("Location %q", loc)
	}
	if id := resp.Header.Get("Callproof-Call-Id"); !regexp.MustCompile(`^WR[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("Callproof-Call-Id %q", id)
	}
	m := regexp.MustCompile(`(?m)^m=audio \d+ \S+ (.*)\r?$`).FindStringSubmatch(answer)
	if m == nil || strings.Fields(m[1])[0] != "0" || !strings.Contains(m[1], "126") || strings.Contains(m[1], "111") || strings.Contains(m[1], "110") || strings.Contains(m[1], "101") {
		t.Errorf("answer formats %q: want PCMU first, PCMA and telephone-event on the offer's 126, nothing else", m)
	}
	if !strings.Contains(answer, "a=rtpmap:126 telephone-event/8000") {
		t.Error("answer has no telephone-event/8000 on 126")
	}
	cands := regexp.MustCompile(`(?m)^a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ host`).FindAllStringSubmatch(answer, -1)
	if len(cands) == 0 {
		t.Fatalf("answer has no host candidates:\n%s", answer)
	}
	for _, c := range cands {
		port, _ := strconv.Atoi(c[2])
		if c[1] != "203.0.113.7" || port < 42100 || port > 42199 {
			t.Errorf("candidate %s:%s: want 203.0.113.7 on a port in 42100-42199", c[1], c[2])
		}
	}
	if ts.h.Calls() != 1 {
		t.Errorf("%d calls live, want 1", ts.h.Calls())
	}
	req, _ := http.NewRequest(http.MethodDelete, ts.URL+loc, nil)
	dresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dresp.Body.Close()
	if dresp.StatusCode != http.StatusOK {
		t.Errorf("DELETE: %d", dresp.StatusCode)
	}
	eventually(t, 3*time.Second, "call torn down", func() bool { return ts.h.Calls() == 0 })
	dresp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dresp.Body.Close()
	if dresp.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", dresp.StatusCode)
	}
}

// TestLimits: MaxCalls and Close refuse offers with 503; a Dial that is refused says so.
func TestLimits(t *testing.T) {
	ts := newTestServer(t, Config{MaxCalls: 1}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := Dial(ctx, ts.URL); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("second call: %v, want a 503 refusal", err)
	}
	_ = ts.h.Close()
	if resp, _ := post(t, ts.URL+OfferPath, "application/sdp", strings.NewReader(goOffer(t))); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Close: %d, want 503", resp.StatusCode)
	}
}
