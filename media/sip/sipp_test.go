package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callproof/callproof/media"
)

// SIPp (Debian sip-tester) plays the trunk in these tests, over real loopback sockets. The
// tests fail when sipp is missing (scripts/test.sh installs it) and are skipped only under
// -short. play_pcap_audio sends from a raw socket, which needs root or CAP_NET_RAW.

// sippPath returns the sipp binary or fails the test.
func sippPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("SIPp scenario skipped under -short: it runs the sipp binary against a real server (drop -short to run it)")
	}
	p, err := exec.LookPath("sipp")
	if err != nil {
		t.Fatalf("sipp is not installed (Debian: apt-get install sip-tester; scripts/test.sh installs it): %v", err)
	}
	return p
}

// freeUDPPorts finds n consecutive free UDP ports on loopback (SIPp binds its media port and
// the one two above it).
func freeUDPPorts(t *testing.T, n int) int {
	t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := c.LocalAddr().(*net.UDPAddr).Port
		_ = c.Close()
		if base%2 != 0 || base+n > 65535 {
			continue
		}
		ok := true
		var held []net.PacketConn
		for i := 0; i < n; i++ {
			pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				ok = false
				break
			}
			held = append(held, pc)
		}
		for _, pc := range held {
			_ = pc.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free UDP ports")
	return 0
}

// runSIPp runs one call of scenario (a file in testdata) against srv and fails the test,
// with SIPp's screen and message log, unless SIPp exits 0. It returns SIPp's message log.
func runSIPp(t *testing.T, srv *Server, scenario string, extra ...string) string {
	t.Helper()
	bin := sippPath(t)
	sf, err := filepath.Abs(filepath.Join("testdata", scenario))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sipPort := freeUDPPorts(t, 1)
	mediaPort := freeUDPPorts(t, 4)
	args := append([]string{srv.Addr().String(), "-sf", sf, "-s", "service",
		"-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", strconv.Itoa(sipPort), "-mp", strconv.Itoa(mediaPort),
		"-m", "1", "-l", "1", "-nostdin", "-timeout", "20s", "-timeout_error",
		"-trace_err", "-trace_msg", "-message_file", filepath.Join(dir, "messages.log"),
		"-error_file", filepath.Join(dir, "errors.log")}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err != nil {
		msgs, _ := os.ReadFile(filepath.Join(dir, "messages.log"))
		errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		var ee *exec.ExitError
		code := -1
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		t.Fatalf("sipp %s: exit %d (%v)\n--- screen\n%s\n--- errors\n%s\n--- messages\n%s", scenario, code, err,
			tail(out.String(), 3000), errs, tail(string(msgs), 12000))
	}
	msgs, _ := os.ReadFile(filepath.Join(dir, "messages.log"))
	return string(msgs)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// checkHealthy asks the server for OPTIONS over UDP and TCP and waits until no call is live.
func checkHealthy(t *testing.T, srv *Server) {
	t.Helper()
	for _, network := range []string{"udp", "tcp"} {
		if code := options(t, network, srv.Addr().String()); code != 200 {
			t.Errorf("OPTIONS over %s: status %d, want 200", network, code)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Live() != 0 {
		if time.Now().After(deadline) {
			t.Errorf("%d calls still live", srv.Live())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// options sends one OPTIONS and returns the response's status code (0 for none).
func options(t *testing.T, network, addr string) int {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	la := c.LocalAddr().String()
	msg := fmt.Sprintf("OPTIONS sip:ping@%s SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=z9hG4bK%d;rport\r\n"+
		"From: <sip:health@%s>;tag=h1\r\nTo: <sip:ping@%s>\r\nCall-ID: health-%d@test\r\nCSeq: 1 OPTIONS\r\n"+
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		addr, strings.ToUpper(network), la, time.Now().UnixNano(), la, addr, time.Now().UnixNano())
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(buf[:n]))
	if len(f) < 2 {
		return 0
	}
	code, _ := strconv.Atoi(f[1])
	return code
}

// goodbyeOnPound is a scripted flow: on '#' it plays a short goodbye and hangs up when the
// goodbye's mark comes back, as the real flow does.
func goodbyeOnPound(t *testing.T) func(leg media.Leg, ev media.Event) bool {
	bye := toneClip(t, "goodbye", 200*time.Millisecond, 660)
	return func(leg media.Leg, ev media.Event) bool {
		switch {
		case ev.Type == media.EventDTMF && ev.Digit == '#':
			if err := leg.Play(bye, "goodbye"); err != nil {
				t.Errorf("play: %v", err)
			}
		case ev.Type == media.EventMark && ev.Mark == "goodbye":
			if !ev.Played {
				t.Error("goodbye reported not played")
			}
			_ = leg.Hangup("done")
		}
		return false
	}
}

// (1) Digits from SIPp's stock RFC 2833 captures reach the flow exactly once each.
func TestSIPpRFC2833(t *testing.T) {
	sippPath(t)
	rec := newRecord()
	srv := startServer(t, Config{AllowFrom: loopback}, recordFlow(rec, goodbyeOnPound(t)))
	runSIPp(t, srv, "uac_rfc2833.xml")
	rec.wait(t, 5*time.Second)
	if got := rec.Digits(); got != "125#" {
		t.Errorf("flow saw digits %q, want 125# once each", got)
	}
	for i, s := range rec.srcs {
		if s != media.SourceRFC4733 {
			t.Errorf("digit %d source %v, want rfc4733", i, s)
		}
	}
	st := rec.start
	if st == nil || st.Transport != "sip" || st.From != "+14155550100" || st.Verstat != "TN-Validation-Passed" ||
		st.Param("request") != "know_categories" || st.Param("lang") != "es-US" || st.CallID == "" {
		t.Errorf("start = %+v", st)
	}
	if !errors.Is(rec.err, media.ErrLegClosed) {
		t.Errorf("hangup error %v, want media.ErrLegClosed", rec.err)
	}
	if len(rec.marks) != 1 {
		t.Errorf("marks %v, want [goodbye]", rec.marks)
	}
	checkHealthy(t, srv)
}

// (2) Digits by SIP INFO from a trunk that authenticates with digest; other INFO bodies get
// 415 and a body that is no digit 400.
func TestSIPpInfo(t *testing.T) {
	sippPath(t)
	rec := newRecord()
	srv := startServer(t, Config{Users: map[string]string{"trunk1": "s3cret"}}, recordFlow(rec, goodbyeOnPound(t)))
	msgs := runSIPp(t, srv, "uac_info.xml", "-au", "trunk1", "-ap", "s3cret")
	rec.wait(t, 5*time.Second)
	if got := rec.Digits(); got != "42#" {
		t.Errorf("flow saw digits %q, want 42#\n%s", got, tail(msgs, 6000))
	}
	for i, s := range rec.srcs {
		if s != media.SourceSIPInfo {
			t.Errorf("digit %d source %v, want sip_info", i, s)
		}
	}
	if rec.start == nil || rec.start.From != "4155550123" {
		t.Errorf("start = %+v (a 10-digit number is not made E.164)", rec.start)
	}
	checkHealthy(t, srv)
}

// (3) A caller who hangs up in the middle of the flow: the flow sees media.ErrHangup and its
// context ends.
func TestSIPpCallerHangsUp(t *testing.T) {
	sippPath(t)
	rec := newRecord()
	long := toneClip(t, "welcome", 5*time.Second, 440)
	ctxDone := make(chan error, 1)
	srv := startServer(t, Config{AllowFrom: loopback}, func(ctx context.Context, leg media.Leg) {
		recordFlow(rec, func(leg media.Leg, ev media.Event) bool {
			if ev.Type == media.EventStart {
				if err := leg.Play(long, "welcome"); err != nil {
					t.Errorf("play: %v", err)
				}
			}
			return false
		})(ctx, leg)
		<-ctx.Done()
		ctxDone <- ctx.Err()
		if err := leg.Play(long, "again"); !errors.Is(err, media.ErrLegClosed) {
			t.Errorf("Play after hangup: %v, want media.ErrLegClosed", err)
		}
	})
	runSIPp(t, srv, "uac_hangup.xml")
	rec.wait(t, 5*time.Second)
	if !errors.Is(rec.err, media.ErrHangup) {
		t.Errorf("hangup error %v, want media.ErrHangup", rec.err)
	}
	if len(rec.marks) != 0 {
		t.Errorf("marks %v: the 5 s prompt cannot have finished", rec.marks)
	}
	select {
	case err := <-ctxDone:
		if err == nil {
			t.Error("flow context not done")
		}
	case <-time.After(5 * time.Second):
		t.Error("flow context not cancelled")
	}
	checkHealthy(t, srv)
}

// (4) An offer without G.711 is answered 488 and no call starts.
func TestSIPpBadSDP(t *testing.T) {
	sippPath(t)
	rec := newRecord()
	srv := startServer(t, Config{AllowFrom: loopback}, recordFlow(rec, nil))
	runSIPp(t, srv, "uac_bad_sdp.xml")
	if srv.Calls() != 0 {
		t.Errorf("%d calls answered, want 0", srv.Calls())
	}
	checkHealthy(t, srv)
}

// (5) Garbage: datagrams that are no SIP are dropped, a request the parser refuses gets a
// stateless 400, a TCP connection that sends garbage is closed; then a good call works.
func TestSIPpGarbage(t *testing.T) {
	sippPath(t)
	rec := newRecord()
	srv := startServer(t, Config{AllowFrom: loopback}, recordFlow(rec, nil))
	addr := srv.Addr().String()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range [][]byte{{0x80, 0x00, 0x01}, []byte("HELLO\r\n\r\n"), bytes.Repeat([]byte{0xff}, 1400),
		[]byte("SIP/2.0 200 OK\r\nVia: x\r\n\r\n"), []byte("\x00\x00\x00\x00")} {
		if _, err := c.Write(g); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 2048)); err == nil {
		t.Errorf("got a %d-byte answer to garbage datagrams, want none", n)
	}
	_ = c.Close()
	tc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tc.Write([]byte("GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n"))
	_ = tc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := tc.Read(make([]byte, 100)); err == nil {
		t.Error("TCP garbage: connection still open and answered")
	}
	_ = tc.Close()
	runSIPp(t, srv, "uac_garbage.xml")
	rec.wait(t, 5*time.Second)
	if srv.Malformed() == 0 {
		t.Error("no malformed datagram counted")
	}
	if srv.Calls() != 1 {
		t.Errorf("%d calls answered, want the good one", srv.Calls())
	}
	checkHealthy(t, srv)
}

// (6) The flow attaches the token and hangs up: SIPp receives the REFER with the token header,
// reports the transfer done with NOTIFY 200, and receives the BYE.
func TestSIPpRefer(t *testing.T) {
	sippPath(t)
	rec := newRecord()
	srv := startServer(t, Config{AllowFrom: loopback, TransferURI: "sip:agents@127.0.0.1:5999"},
		recordFlow(rec, func(leg media.Leg, ev media.Event) bool {
			if ev.Type == media.EventStart {
				h, ok := leg.(interface{ SetHandoff(map[string]string) })
				if !ok {
					t.Error("leg has no SetHandoff")
					return true
				}
				h.SetHandoff(map[string]string{HandoffToken: "tok-abc.123"})
				_ = leg.Hangup("verified")
			}
			return false
		}))
	runSIPp(t, srv, "uac_refer.xml")
	rec.wait(t, 5*time.Second)
	checkHealthy(t, srv)
	// The same over TCP: the REFER and the BYE go back on the caller's connection.
	rec2 := newRecord()
	srv2 := startServer(t, Config{AllowFrom: loopback, TransferURI: "sip:agents@127.0.0.1:5999"},
		recordFlow(rec2, func(leg media.Leg, ev media.Event) bool {
			if ev.Type == media.EventStart {
				leg.(interface{ SetHandoff(map[string]string) }).SetHandoff(map[string]string{HandoffToken: "tok-abc.123"})
				_ = leg.Hangup("verified")
			}
			return false
		}))
	runSIPp(t, srv2, "uac_refer.xml", "-t", "t1")
	rec2.wait(t, 5*time.Second)
	checkHealthy(t, srv2)
}

// Hold and resume by re-INVITE are answered 200 with the reversed direction; an offer without
// G.711 in a re-INVITE gets 488 and the call goes on until the caller hangs up.
func TestSIPpHold(t *testing.T) {
	sippPath(t)
	rec := newRecord()
	srv := startServer(t, Config{AllowFrom: loopback}, recordFlow(rec, nil))
	runSIPp(t, srv, "uac_hold.xml")
	rec.wait(t, 5*time.Second)
	if !errors.Is(rec.err, media.ErrHangup) {
		t.Errorf("hangup error %v, want the caller's media.ErrHangup", rec.err)
	}
	checkHealthy(t, srv)
}

// A caller whose RTP never comes is hung up (BYE) after Config.RTPTimeout.
func TestSIPpRTPTimeout(t *testing.T) {
	sippPath(t)
	rec := newRecord()
	srv := startServer(t, Config{AllowFrom: loopback, RTPTimeout: time.Second}, recordFlow(rec, nil))
	began := time.Now()
	runSIPp(t, srv, "uac_silent.xml")
	rec.wait(t, 5*time.Second)
	if !errors.Is(rec.err, ErrRTPTimeout) {
		t.Errorf("hangup error %v, want ErrRTPTimeout", rec.err)
	}
	if d := time.Since(began); d < time.Second {
		t.Errorf("call ended after %s, before the 1s timeout", d)
	}
	checkHealthy(t, srv)
}

// An INVITE without an offer gets our offer in the 200; the answer in the ACK sets the codec.
func TestSIPpLateOffer(t *testing.T) {
	sippPath(t)
	rec := newRecord()
	var stats Stats
	srv := startServer(t, Config{AllowFrom: loopback}, recordFlow(rec, func(leg media.Leg, ev media.Event) bool {
		if ev.Type == media.EventHangup {
			stats = leg.(*Leg).Stats() // before the flow returns: rec.wait orders the read
		}
		return false
	}))
	runSIPp(t, srv, "uac_late_offer.xml")
	rec.wait(t, 5*time.Second)
	if !errors.Is(rec.err, media.ErrHangup) {
		t.Errorf("hangup error %v, want the caller's media.ErrHangup", rec.err)
	}
	if stats.FramesOut < 10 {
		t.Errorf("sent %d frames in half a second after the answer in the ACK", stats.FramesOut)
	}
	checkHealthy(t, srv)
}
