package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/audiosocket"
)

// Addresses of the loopback network the hostile peers come from, so that the per-address
// limits they trip are theirs: the good calls and the other subtests come from 127.0.0.1.
const (
	floodAddr     = "127.0.0.66"
	slowlorisAddr = "127.0.0.67"
)

// TestHostilePeersWhileCallsAreVerified starts the real server and, while good calls are in
// progress on three platforms (Twilio with real-time playback, SIP, AudioSocket), throws at
// its sockets what hostile or broken peers send: malformed JSON, unknown events, binary where
// text is expected, invalid base64, wrongly sized audio frames, a 10 MB WebSocket message,
// media before start, thousands of digits on one stream, thousands of connections from one
// address, slow headers, oversized SDP offers over HTTP and SIP, SIP garbage over UDP and TCP
// and AudioSocket garbage over TCP. Each gets its close code, status or response; every good
// call ends verified; afterwards the server is healthy, no log line grew with what the peers
// sent, and its goroutines are back near where they started.
func TestHostilePeersWhileCallsAreVerified(t *testing.T) {
	n, stop := launchNode(t, func(c *Config) {
		// The subtests open a few dozen streams from 127.0.0.1 within seconds; the flood
		// comes from its own address and trips the limit there.
		c.StreamsPerMinute, c.StreamsBurst = 600, 60
	}, io.Discard)
	defer stop()
	// The baseline: the node serving, nothing else.
	httpGetText(t, n.url+"/healthz")
	http.DefaultClient.CloseIdleConnections()
	time.Sleep(100 * time.Millisecond)
	baseline := runtime.NumGoroutine()
	ws := "ws" + strings.TrimPrefix(n.url, "http")

	// Good calls, one after another on each of three platforms, until the hostile traffic is
	// over: every hostile peer meets live calls.
	type goodResult struct {
		platform string
		rep      *callReport
		out      string
		err      error
	}
	var goodMu sync.Mutex
	var goodCalls []goodResult
	hostileDone := make(chan struct{})
	var goodWG sync.WaitGroup
	endGood := sync.OnceFunc(func() { close(hostileDone); goodWG.Wait() })
	defer endGood() // before the node stops, also when the test fails early
	for _, platform := range []string{"twilio", "sip", "audiosocket"} {
		goodWG.Go(func() {
			for {
				var out bytes.Buffer
				o := callOptions{server: n.url, platform: platform, agentKey: testAgentKey, registrationKey: testAgentKey,
					from: "+14155550100", to: "+18005550199", verstat: "TN-Validation-Passed-A", dtmf: "events",
					realtime: platform == "twilio", bargeIn: true, issuer: "callproof", audience: "callproof-agent",
					sip: n.sip, audiosocket: n.audiosocket}
				answers, _, err := buildAnswers(callOptions{customer: "cus_ada"})
				var rep *callReport
				if err == nil {
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					rep, err = placeCall(ctx, o, answers, &out)
					cancel()
				}
				goodMu.Lock()
				goodCalls = append(goodCalls, goodResult{platform, rep, out.String(), err})
				goodMu.Unlock()
				select {
				case <-hostileDone:
					return
				default:
				}
			}
		})
	}
	eventually(t, 10*time.Second, "the good calls to start", func() bool { return n.app.live.Load() >= 3 })
	began := time.Now()

	// Slow headers run beside the rest: the server's header timeout (ReadHeaderTimeout, 10 s)
	// must close them.
	type slowResult struct {
		longest time.Duration
		err     error
	}
	slow := make(chan slowResult, 1)
	go func() {
		longest, err := slowloris(n.url, 20)
		slow <- slowResult{longest, err}
	}()

	t.Logf("goroutines: %d serving, %d with the good calls live", baseline, runtime.NumGoroutine())

	t.Run("twilio", func(t *testing.T) {
		connected, start := twilioConnected, twilioStart("CAhostile")
		mediaMsg := func(seq, payload string) string {
			return `{"event":"media","sequenceNumber":"` + seq + `","streamSid":"MZ1","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"` + payload + `"}}`
		}
		silence := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{media.UlawSilence}, 160))
		text := func(s string) wsFrame { return wsFrame{websocket.TextMessage, []byte(s)} }
		for _, tc := range []struct {
			name   string
			frames []wsFrame
			code   int
			reason string
		}{
			{"malformed JSON", []wsFrame{text(connected), text(start), text(`{"event":"media",`)}, 1007, "bad JSON"},
			{"unknown event", []wsFrame{text(connected), text(start), text(`{"event":"bogus","sequenceNumber":"2"}`)}, 1008, "unknown event"},
			{"binary where text is expected", []wsFrame{text(connected), text(start), {websocket.BinaryMessage, []byte{0xff, 0, 1}}}, 1003, "binary"},
			{"invalid base64", []wsFrame{text(connected), text(start), text(mediaMsg("2", "!!!!"))}, 1007, "base64"},
			{"media before start", []wsFrame{text(connected), text(mediaMsg("1", silence))}, 1008, "media before start"},
			{"10 MB message", []wsFrame{text(connected), text(start), text(mediaMsg("2", strings.Repeat("////", 10<<20/4)))}, 1009, "larger than"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, reason, err := wsExchange(ws+"/v1/twilio", nil, tc.frames)
				if err != nil || code != tc.code || !strings.Contains(reason, tc.reason) {
					t.Errorf("closed with %d %q (%v), want %d containing %q", code, reason, err, tc.code, tc.reason)
				}
				t.Logf("closed with %d %q", code, reason)
			})
		}
	})

	t.Run("digit flood", func(t *testing.T) {
		// Thousands of digit events arrive in one burst, as fast as the socket carries them.
		conn, _, err := websocket.DefaultDialer.Dial(ws+"/v1/twilio", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var burst []byte
		burst = appendClientFrame(burst, []byte(twilioConnected))
		burst = appendClientFrame(burst, []byte(twilioStart("CAflood")))
		const digits = 5000
		for i := range digits {
			burst = appendClientFrame(burst, fmt.Appendf(nil, `{"event":"dtmf","sequenceNumber":"%d","streamSid":"MZ1","dtmf":{"track":"inbound_track","digit":"%c"}}`,
				i+2, "0123456789*#"[i%12]))
		}
		began := time.Now()
		if _, err := conn.UnderlyingConn().Write(burst); err != nil {
			t.Fatal(err)
		}
		code, reason, err := readClose(conn, 20*time.Second)
		if err != nil || code != websocket.CloseNormalClosure || !outcomes[reason] && reason != "invalid_input" && reason != "no_input" {
			t.Errorf("after %d digits the stream closed with %d %q (%v), want 1000 and the call's outcome", digits, code, reason, err)
		}
		t.Logf("%d digits in %d bytes: stream closed after %s with %d %q", digits, len(burst), time.Since(began), code, reason)
	})
	t.Run("vonage", func(t *testing.T) {
		connected := []byte(`{"event":"websocket:connected","content-type":"audio/l16;rate=8000","uuid":"hostile-vonage","from":"15555550123"}`)
		for _, tc := range []struct {
			name   string
			frames []wsFrame
			code   int
			reason string
		}{
			{"audio frame of the wrong size", []wsFrame{{websocket.TextMessage, connected}, {websocket.BinaryMessage, make([]byte, 321)}}, 1007, ""},
			{"audio before websocket:connected", []wsFrame{{websocket.BinaryMessage, make([]byte, 320)}}, 1008, ""},
			{"10 MB audio message", []wsFrame{{websocket.TextMessage, connected}, {websocket.BinaryMessage, make([]byte, 10<<20)}}, 1009, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, reason, err := wsExchange(ws+"/v1/vonage", nil, tc.frames)
				if err != nil || code != tc.code || !strings.Contains(reason, tc.reason) {
					t.Errorf("closed with %d %q (%v), want %d containing %q", code, reason, err, tc.code, tc.reason)
				}
				t.Logf("closed with %d %q", code, reason)
			})
		}
	})

	t.Run("thousands of connections from one address", func(t *testing.T) {
		const conns, workers = 2000, 50
		var mu sync.Mutex
		statuses := map[int]int{}
		var wg sync.WaitGroup
		next := make(chan struct{})
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(floodAddr)}, Timeout: 5 * time.Second}
		host := strings.TrimPrefix(n.url, "http://")
		for range workers {
			wg.Go(func() {
				for range next {
					status := upgradeStatus(d, host)
					mu.Lock()
					statuses[status]++
					mu.Unlock()
				}
			})
		}
		for range conns {
			next <- struct{}{}
		}
		close(next)
		wg.Wait()
		if statuses[http.StatusTooManyRequests] < conns-200 || statuses[http.StatusTooManyRequests]+statuses[http.StatusSwitchingProtocols] != conns {
			t.Errorf("statuses %v: want 429 for all but the burst (60) and what refills meanwhile", statuses)
		}
		t.Logf("%d connections from %s: %v", conns, floodAddr, statuses)
		if status := upgradeStatus(net.Dialer{}, host); status != http.StatusSwitchingProtocols {
			t.Errorf("a stream from 127.0.0.1 after the flood: %d, want 101: the limit is per address", status)
		}
		m := httpGetText(t, n.url+"/metrics")
		want := fmt.Sprintf(`callproof_streams_rejected_total{reason="rate_limited"} %d`, statuses[http.StatusTooManyRequests])
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	})

	t.Run("oversized WebRTC offer", func(t *testing.T) {
		big := "v=0\r\n" + strings.Repeat("a=x-padding:"+strings.Repeat("x", 100)+"\r\n", 10000) // about 1 MB
		for _, tc := range []struct {
			name   string
			body   io.Reader
			status int
		}{
			{"with Content-Length", strings.NewReader(big), http.StatusRequestEntityTooLarge},
			{"chunked", io.MultiReader(strings.NewReader(big)), http.StatusRequestEntityTooLarge},
			{"not SDP", strings.NewReader("\x00\x01garbage"), http.StatusBadRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := http.Post(n.url+"/v1/webrtc", "application/sdp", tc.body)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Errorf("status %d %q, want %d", resp.StatusCode, body, tc.status)
				}
				t.Logf("%d %q", resp.StatusCode, bytes.TrimSpace(body))
			})
		}
	})

	t.Run("SIP", func(t *testing.T) {
		padding := strings.Repeat("a=x-padding:"+strings.Repeat("x", 100)+"\r\n", 200) // 22 KB: over the 16 KiB SDP limit
		for _, tc := range []struct {
			name    string
			network string
			msg     func(local string) string
			status  int    // 0: no answer; -1: the server closes the connection
			want    string // in the response
		}{
			{"oversized SDP over UDP", "udp", func(l string) string { return sipInvite("UDP", l, n.sip, padding) }, 488, "too large"},
			{"oversized SDP over TCP", "tcp", func(l string) string { return sipInvite("TCP", l, n.sip, padding) }, 488, "too large"},
			{"oversized INVITE over TCP", "tcp", func(l string) string {
				return sipInvite("TCP", l, n.sip, strings.Repeat(padding, 4)) // over sipgo's 64 KiB message limit
			}, -1, ""},
			{"malformed request over UDP", "udp", func(l string) string {
				return strings.Replace(sipInvite("UDP", l, n.sip, ""), "Max-Forwards: 70", "Max-Forwards: many", 1)
			}, 400, "Bad Request"},
			{"binary garbage over UDP", "udp", func(string) string { return "\x80\x00\xff\xfe" + strings.Repeat("\x17", 300) }, 0, ""},
			{"garbage over TCP", "tcp", func(string) string { return "\x16\x03\x01\x02\x00" + strings.Repeat("\xff\x00", 2000) + "\r\n\r\n" }, -1, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, head, err := sipExchange(tc.network, n.sip, tc.msg)
				if err != nil || status != tc.status || !strings.Contains(head, tc.want) {
					t.Errorf("got %d (%v):\n%s\nwant %d with %q", status, err, head, tc.status, tc.want)
				}
				t.Logf("got %d %q", status, head)
			})
		}
	})

	t.Run("AudioSocket", func(t *testing.T) {
		uuid := audiosocket.NewUUID()
		for _, tc := range []struct {
			name string
			send []byte
		}{
			{"audio before the UUID", []byte{0x10, 0x00, 0x04, 1, 2, 3, 4}},
			{"random bytes", bytes.Repeat([]byte{0x7f, 0xee, 0x42}, 100)},
			{"a frame longer than the limit after the UUID", append(append([]byte{0x01, 0x00, 0x10}, uuid[:]...), 0x10, 0xff, 0xff)},
			{"an unknown kind after the UUID", append(append([]byte{0x01, 0x00, 0x10}, uuid[:]...), 0x42, 0x00, 0x01, 0x00)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				frames, err := audioSocketExchange(n.audiosocket, tc.send)
				if err != nil || len(frames) == 0 || frames[len(frames)-1] != 0x00 {
					t.Errorf("frame kinds %x (%v): want the server to end with a hangup frame (00) and close", frames, err)
				}
				t.Logf("%d frames, the last of kind %x", len(frames), frames[len(frames)-1:])
			})
		}
	})
	t.Run("slow headers", func(t *testing.T) {
		r := <-slow
		if r.err != nil {
			t.Error(r.err)
		}
		t.Logf("20 connections sending a header line a second: the last closed after %s", r.longest)
	})
	t.Logf("hostile traffic took %s; %d calls live at its end", time.Since(began), n.app.live.Load())
	endGood()
	placed := map[string]int{}
	for _, r := range goodCalls {
		placed[r.platform]++
		if r.err != nil || r.rep == nil || r.rep.Outcome != "verified" || r.rep.Token == "" || r.rep.TokenErr != nil {
			t.Errorf("good %s call during the hostile traffic: %v\n%s", r.platform, r.err, r.out)
		}
	}
	t.Logf("good calls verified during the hostile traffic: %v", placed)
	if body := httpGetText(t, n.url+"/healthz"); !strings.Contains(body, "ok") {
		t.Errorf("/healthz after the hostile traffic: %q", body)
	}
	// What peers sent is not copied into the logs: no line grows with their input.
	for i, line := range strings.Split(n.logs.String(), "\n") {
		if len(line) > 2048 {
			t.Errorf("log line %d is %d bytes: %.300s…", i+1, len(line), line)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	eventually(t, 15*time.Second, "goroutines to return near the baseline", func() bool {
		return runtime.NumGoroutine() <= baseline+10
	})
	t.Logf("goroutines: %d serving before, %d after", baseline, runtime.NumGoroutine())
}

type wsFrame struct {
	typ  int
	data []byte
}

// wsExchange opens a WebSocket from 127.0.0.1, sends frames and returns the close frame the
// server answered with.
func wsExchange(url string, h http.Header, frames []wsFrame) (int, string, error) {
	conn, resp, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		if resp != nil {
			return 0, "", fmt.Errorf("dial: HTTP %d: %w", resp.StatusCode, err)
		}
		return 0, "", err
	}
	defer conn.Close()
	for _, f := range frames {
		if err := conn.WriteMessage(f.typ, f.data); err != nil {
			break // the server may have closed already; its close frame is still to be read
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	return readClose(conn, 10*time.Second)
}

// readClose reads (and drops) what the server sends until its close frame.
func readClose(conn *websocket.Conn, timeout time.Duration) (int, string, error) {
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, _, err := conn.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text, nil
		}
		if err != nil {
			return 0, "", fmt.Errorf("read: %w (want a close frame)", err)
		}
	}
}

const twilioConnected = `{"event":"connected","protocol":"Call","version":"1.0.0"}`

func twilioStart(callSid string) string {
	return `{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"streamSid":"MZ1","accountSid":"AC1",` +
		`"callSid":"` + callSid + `","tracks":["inbound"],"customParameters":{"from":"+15555550123"},` +
		`"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}`
}

// appendClientFrame appends one masked, final text frame (RFC 6455 §5.2), as a client sends it.
func appendClientFrame(dst, payload []byte) []byte {
	dst = append(dst, 0x81)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	mask := [4]byte{0x5a, 0xc3, 0x1e, 0x77}
	dst = append(dst, mask[:]...)
	for i, b := range payload {
		dst = append(dst, b^mask[i%4])
	}
	return dst
}

// slowloris opens conns connections from slowlorisAddr that send a request's headers one
// line a second and never finish them, and checks that the server closes each within its
// header timeout without answering. It returns how long the slowest took to be closed.
func slowloris(base string, conns int) (time.Duration, error) {
	host := strings.TrimPrefix(base, "http://")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(slowlorisAddr)}}
	type result struct {
		took time.Duration
		err  error
	}
	results := make(chan result, conns)
	for i := range conns {
		go func() {
			c, err := d.Dial("tcp", host)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer c.Close()
			began := time.Now()
			if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: callproof\r\n"); err != nil {
				results <- result{err: err}
				return
			}
			closed := make(chan []byte, 1)
			go func() {
				got, _ := io.ReadAll(c)
				closed <- got
			}()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for j := 0; ; j++ {
				select {
				case got := <-closed:
					took := time.Since(began)
					switch {
					case len(got) > 0 && !bytes.HasPrefix(got, []byte("HTTP/1.1 408")):
						results <- result{took, fmt.Errorf("connection %d: the server answered unfinished headers: %.80q", i, got)}
					case took < 5*time.Second || took > 20*time.Second:
						results <- result{took, fmt.Errorf("connection %d: closed after %s, want about the 10 s header timeout", i, took)}
					default:
						results <- result{took, nil}
					}
					return
				case <-tick.C:
					if j > 30 {
						c.Close()
						<-closed
						results <- result{time.Since(began), fmt.Errorf("connection %d: still open after %s of slow headers", i, time.Since(began))}
						return
					}
					_, _ = fmt.Fprintf(c, "X-Slow-%d: %d\r\n", j, j) // a write after the close may fail
				}
			}
		}()
	}
	var longest time.Duration
	var first error
	for range conns {
		r := <-results
		longest = max(longest, r.took)
		if r.err != nil && first == nil {
			first = r.err
		}
	}
	return longest, first
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// upgradeStatus asks for a Twilio stream on a fresh connection and returns the status; a
// stream that is admitted is closed at once.
func upgradeStatus(d net.Dialer, host string) int {
	c, err := d.Dial("tcp", host)
	if err != nil {
		return -1
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(c, "GET /v1/twilio HTTP/1.1\r\nHost: callproof\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if err != nil {
		return -1
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return -1
	}
	resp.Body.Close()
	return resp.StatusCode
}

var sipSeq atomic.Int64

// sipInvite is an INVITE from local to server whose SDP offers PCMU, followed by padding.
func sipInvite(transport, local, server, padding string) string {
	id := strconv.FormatInt(sipSeq.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n" + padding
	return "INVITE sip:callproof@" + server + " SIP/2.0\r\n" +
		"Via: SIP/2.0/" + transport + " " + local + ";branch=z9hG4bK" + id + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:+15555550123@127.0.0.1>;tag=h" + id + "\r\n" +
		"To: <sip:callproof@" + server + ">\r\n" +
		"Call-ID: hostile-" + id + "\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:hostile@" + local + ";transport=" + strings.ToLower(transport) + ">\r\n" +
		"Content-Type: application/sdp\r\n" +
		"Content-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
}

// sipExchange sends one message to the SIP server and returns the final response's status
// and head (acknowledged, as a UAC does for an INVITE), 0 when none came within 2 s, or -1
// when the server closed the connection.
func sipExchange(network, server string, msg func(local string) string) (int, string, error) {
	c, err := net.Dial(network, server)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	req := msg(c.LocalAddr().String())
	if _, err := io.WriteString(c, req); err != nil {
		return 0, "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(c)
	for {
		status, head, err := readSIPResponse(network, c, r)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, syscallReset):
			return -1, "", nil
		case err != nil:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, "", nil
			}
			return 0, "", err
		case status < 200:
			continue
		}
		if strings.HasPrefix(req, "INVITE ") {
			_, _ = io.WriteString(c, sipAck(req, head))
		}
		return status, head, nil
	}
}

var syscallReset = errors.New("connection reset")

// readSIPResponse reads one response: a datagram over UDP, headers and Content-Length over TCP.
func readSIPResponse(network string, c net.Conn, r *bufio.Reader) (int, string, error) {
	var head string
	if network == "udp" {
		buf := make([]byte, 65536)
		n, err := c.Read(buf)
		if err != nil {
			return 0, "", err
		}
		head, _, _ = strings.Cut(string(buf[:n]), "\r\n\r\n")
	} else {
		var b strings.Builder
		length := 0
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				if strings.Contains(err.Error(), "reset") {
					return 0, "", syscallReset
				}
				return 0, "", err
			}
			if line == "\r\n" {
				break
			}
			b.WriteString(line)
			if k, v, ok := strings.Cut(line, ":"); ok && (strings.EqualFold(k, "Content-Length") || k == "l") {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if _, err := io.CopyN(io.Discard, r, int64(length)); err != nil {
			return 0, "", err
		}
		head = b.String()
	}
	fields := strings.Fields(head)
	if len(fields) < 2 || fields[0] != "SIP/2.0" {
		return 0, "", fmt.Errorf("not a SIP response: %.80q", head)
	}
	status, err := strconv.Atoi(fields[1])
	return status, head, err
}

// sipAck acknowledges a final non-2xx response to invite (RFC 3261 §17.1.1.3).
func sipAck(invite, head string) string {
	header := func(msg, name string) string {
		for _, l := range strings.Split(msg, "\r\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	uri := strings.Fields(invite)[1]
	return "ACK " + uri + " SIP/2.0\r\nVia: " + header(invite, "Via") + "\r\nMax-Forwards: 70\r\nFrom: " + header(invite, "From") +
		"\r\nTo: " + header(head, "To") + "\r\nCall-ID: " + header(invite, "Call-ID") + "\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
}

// audioSocketExchange sends data on a fresh AudioSocket connection and returns the kinds of
// the frames the server sent until it closed the connection.
func audioSocketExchange(addr string, data []byte) ([]byte, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(data); err != nil {
		return nil, err
	}
	var kinds []byte
	r := bufio.NewReader(c)
	for {
		var hdr [3]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return kinds, nil
			}
			return kinds, err
		}
		kinds = append(kinds, hdr[0])
		if _, err := io.CopyN(io.Discard, r, int64(binary.BigEndian.Uint16(hdr[1:]))); err != nil {
			return kinds, err
		}
	}
}
