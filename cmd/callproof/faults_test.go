package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media/twilio"
	"github.com/callproof/callproof/sessions/audit"
	"github.com/callproof/callproof/sessions/redis/redistest"
)

// Faults: each test runs `callproof serve` as a real process on loopback ports and breaks
// something under it (Redis down at start, Redis SIGKILLed under load and restarted empty,
// the server SIGKILLed under load, SIGTERM with live calls), then checks that it failed closed
// and came back.

// buildServer builds the callproof binary for a test.
func buildServer(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and runs server processes")
	}
	bin := filepath.Join(t.TempDir(), "callproof")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// serverProc is one `callproof serve` process.
type serverProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	logs   *syncBuffer
	exited chan struct{}
	state  *os.ProcessState
}

// startServer starts `serve` on a free loopback port with the demo directory, the test agent
// key, data directory data and the extra CALLPROOF_* settings in env, and waits until it
// answers /healthz (not /readyz: some tests start it without its Redis).
func startServer(t *testing.T, bin, data string, env ...string) *serverProc {
	t.Helper()
	dir, err := filepath.Abs("../../kba/demo_directory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &serverProc{t: t, url: "http://" + addr, logs: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--http", addr)
	p.cmd.Env = append(os.Environ(), "CALLPROOF_DATA="+data, "CALLPROOF_DIRECTORY="+dir,
		"CALLPROOF_AGENT_KEYS="+testAgentKey, "CALLPROOF_LOG_LEVEL=info",
		// Every test caller is 127.0.0.1: lift the per-address stream limit.
		"CALLPROOF_STREAMS_PER_MINUTE=100000", "CALLPROOF_STREAMS_BURST=10000")
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if strings.Contains(p.logs.String(), "panic") {
			t.Errorf("the server panicked:\n%s", p.logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if code, _ := get(p.url + "/healthz"); code == http.StatusOK {
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("the server exited at start (%v):\n%s", p.state, p.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("the server at %s never answered /healthz:\n%s", p.url, p.logs.String())
	return nil
}

// stop sends sig and waits for the process to exit, returning its exit code and how long it
// took.
func (p *serverProc) stop(sig syscall.Signal, within time.Duration) (int, time.Duration) {
	p.t.Helper()
	began := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(within):
		p.t.Fatalf("the server did not exit within %v of %v:\n%s", within, sig, p.logs.String())
	}
	return p.state.ExitCode(), time.Since(began)
}

// waitReady polls /readyz until it answers 200, and returns how long that took.
func (p *serverProc) waitReady(within time.Duration) time.Duration {
	p.t.Helper()
	began := time.Now()
	for {
		code, body := get(p.url + "/readyz")
		if code == http.StatusOK {
			return time.Since(began)
		}
		if time.Since(began) > within {
			p.t.Fatalf("/readyz still %d after %v: %s", code, within, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveCalls reads callproof_live_calls from /metrics, summed over transports.
func (p *serverProc) liveCalls() int {
	_, body := get(p.url + "/metrics")
	n := 0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "callproof_live_calls{") {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			n += int(v)
		}
	}
	return n
}

func get(url string) (int, string) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// callAt runs `callproof call` against base (answers from the demo directory; fast, not real
// time, unless args say otherwise) and returns its output and exit error.
func callAt(base string, args ...string) (string, error) {
	var out bytes.Buffer
	args = append([]string{"call", "--server", base, "--agent-key", testAgentKey, "--timeout", "60s"}, args...)
	err := run(context.Background(), args, func(string) string { return "" }, nil, &out, &out)
	return out.String(), err
}

// outcomeOf is the call's outcome line ("" when the call never got one).
func outcomeOf(out string) string {
	m := regexp.MustCompile(`(?m)^outcome: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// agentTap is an agent connected to every call of a node, keeping every message it gets.
type agentTap struct {
	conn *websocket.Conn
	done chan struct{}
	mu   sync.Mutex
	msgs []map[string]any
}

func tapAgent(t *testing.T, base string) *agentTap {
	t.Helper()
	a := &agentTap{conn: dialAgent(t, base, ""), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for {
			_, data, err := a.conn.ReadMessage()
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(data, &m) == nil {
				a.mu.Lock()
				a.msgs = append(a.msgs, m)
				a.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { a.conn.Close(); <-a.done })
	return a
}

// statuses lists the status notices received, as "state" or "state/reason".
func (a *agentTap) statuses() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, m := range a.msgs {
		if m["type"] == "status" {
			s, _ := m["state"].(string)
			if r, _ := m["reason"].(string); r != "" {
				s += "/" + r
			}
			out = append(out, s)
		}
	}
	return out
}

// find returns the first message of type typ for call, if any.
func (a *agentTap) find(call, typ string) map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range a.msgs {
		if m["call"] == call && m["type"] == typ {
			return m
		}
	}
	return nil
}

func (a *agentTap) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			a.mu.Lock()
			defer a.mu.Unlock()
			t.Fatalf("agent: timed out waiting for %s; got %v", what, a.msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// untilVerified places calls until one is verified (token checked against the JWKS). Every
// call before it must have ended in technical_difficulty: never verified on unknown state,
// never another outcome. It returns how long it took.
func untilVerified(t *testing.T, base string, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		out, err := callAt(base, "--customer", "cus_ada")
		if err == nil {
			return time.Since(began)
		}
		if o := outcomeOf(out); o != "technical_difficulty" {
			t.Fatalf("a call while the service came back ended %q (%v), want technical_difficulty or verified:\n%s", o, err, out)
		}
		if time.Since(began) > within {
			t.Fatalf("no call verified within %v:\n%s", within, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// (a) Redis is down when the server starts: it serves anyway, /readyz says why, /healthz stays
// 200, a call hears technical_difficulty and gets no token, and agents are told; once Redis
// starts, service returns without a restart.
func TestFaultRedisDownAtStart(t *testing.T) {
	bin := buildServer(t)
	rs := redistest.Reserve(t) // its port is free: nothing listens yet
	p := startServer(t, bin, t.TempDir(), "CALLPROOF_REDIS="+rs.URL())

	if code, body := get(p.url + "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "redis unavailable") {
		t.Fatalf("/readyz with Redis down: %d %q, want 503 saying redis is unavailable", code, body)
	}
	if code, _ := get(p.url + "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz with Redis down: %d", code)
	}
	tap := tapAgent(t, p.url)
	tap.wait(t, "the degraded notice", func() bool { return last(tap.statuses()) == "degraded/state_store_unavailable" })

	out, err := callAt(p.url, "--customer", "cus_ada")
	if err == nil || outcomeOf(out) != "technical_difficulty" || !strings.Contains(out, "prompt technical_difficulty") ||
		strings.Contains(out, "token:") {
		t.Fatalf("a call with Redis down: %v\n%s", err, out)
	}
	if m := tap.find(callIDFrom(t, out), "verified"); m != nil {
		t.Fatalf("a token went to the agent with Redis down: %v", m)
	}
	if _, metrics := get(p.url + "/metrics"); !regexp.MustCompile(`callproof_calls_total\{outcome="technical_difficulty",transport="twilio"\} 1`).MatchString(metrics) {
		t.Errorf("metrics do not count the failed call:\n%s", metrics)
	}

	began := time.Now()
	rs.Restart() // Redis comes up on the port the server was given
	ready := p.waitReady(15 * time.Second)
	untilVerified(t, p.url, 15*time.Second)
	t.Logf("after Redis started: ready in %v, first call verified in %v (with the restore grace)",
		ready.Round(10*time.Millisecond), time.Since(began).Round(10*time.Millisecond))
	tap.wait(t, "the recovery notice", func() bool { return last(tap.statuses()) == "ok" })

	if code, took := p.stop(syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM (%v)", code, took)
	}
}

// (b) Redis is SIGKILLed with calls in progress and restarted empty on the same port: the
// server keeps answering health checks and does not panic, calls during the outage end in
// technical_difficulty (every call ends verified or in technical_difficulty), agents are told,
// and within seconds new calls are verified again;
// the state Redis lost does not let anyone through: a locked account stays locked and a token
// redeemed before the crash is not accepted again.
func TestFaultRedisKilledUnderLoad(t *testing.T) {
	bin := buildServer(t)
	rs := redistest.Start(t)
	p := startServer(t, bin, t.TempDir(), "CALLPROOF_REDIS="+rs.URL())
	p.waitReady(10 * time.Second)
	tap := tapAgent(t, p.url)

	// State Redis will lose: cus_ben locked by three failed sessions, a token redeemed.
	for range 3 {
		if out, _ := callAt(p.url, "--customer", "cus_ben", "--answers", "ask_zip=00000"); outcomeOf(out) != "not_verified" {
			t.Fatalf("failed session:\n%s", out)
		}
	}
	out, err := callAt(p.url, "--customer", "cus_ada")
	if err != nil {
		t.Fatalf("call before the crash: %v\n%s", err, out)
	}
	call := callIDFrom(t, out)
	tap.wait(t, "the token", func() bool { return tap.find(call, "verified") != nil })
	token, _ := tap.find(call, "verified")["token"].(string)
	if code := redeem(t, p.url, token); code != http.StatusOK {
		t.Fatalf("redeem before the crash: %d", code)
	}

	// Health checks every 50 ms for the whole test.
	var checks, bad atomic.Int64
	stopHealth := make(chan struct{})
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		for {
			select {
			case <-stopHealth:
				return
			case <-time.After(50 * time.Millisecond):
			}
			checks.Add(1)
			if code, _ := get(p.url + "/healthz"); code != http.StatusOK {
				bad.Add(1)
			}
		}
	}()
	// Callers in a loop while Redis dies and comes back: four fast ones, two in real time
	// (about 11 s a call), so that calls are in progress at every moment.
	type placed struct {
		began, ended time.Time
		realtime     bool
		outcome      string
		out          string
	}
	var mu sync.Mutex
	var calls []placed
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 6 {
		args := []string{"--customer", "cus_ada"}
		if i >= 4 {
			args = append(args, "--realtime", "--barge-in")
		}
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				began := time.Now()
				out, err := callAt(p.url, args...)
				mu.Lock()
				calls = append(calls, placed{began, time.Now(), len(args) > 2, outcomeOf(out), fmt.Sprintf("%v\n%s", err, out)})
				mu.Unlock()
			}
		})
	}
	verifiedSoFar := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range calls {
			if c.outcome == "verified" {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for verifiedSoFar() < 10 || p.liveCalls() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls verified, %d in progress", verifiedSoFar(), p.liveCalls())
		}
		time.Sleep(20 * time.Millisecond)
	}

	rs.Kill()
	killed := time.Now()
	if code, body := get(p.url + "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "redis") {
		t.Errorf("/readyz with Redis killed: %d %q", code, body)
	}
	out, err = callAt(p.url, "--customer", "cus_ada")
	if err == nil || outcomeOf(out) != "technical_difficulty" {
		t.Fatalf("a call during the outage: %v\n%s", err, out)
	}
	tap.wait(t, "the degraded notice", func() bool {
		return strings.Contains(strings.Join(tap.statuses(), ","), "degraded/state_store_unavailable")
	})

	// Keep Redis down a moment, so that the background callers place calls into the outage
	// (they fail fast: the node knows Redis is down).
	time.Sleep(time.Second)
	rs.Restart() // the same port, empty: no persistence
	restarted := time.Now()
	back := untilVerified(t, p.url, 20*time.Second)
	t.Logf("Redis down %v; first call verified %v after its restart", restarted.Sub(killed).Round(10*time.Millisecond),
		back.Round(10*time.Millisecond))
	if back > 10*time.Second {
		t.Errorf("service took %v to return after Redis restarted", back)
	}
	if out, err := callAt(p.url, "--customer", "cus_ben"); err == nil || outcomeOf(out) != "locked_out" {
		t.Fatalf("the lock set before Redis lost its data: %v\n%s", err, out)
	}
	if code := redeem(t, p.url, token); code != http.StatusConflict {
		t.Fatalf("a token redeemed before Redis lost its data redeems again: %d, want 409", code)
	}
	tap.wait(t, "the recovery notice", func() bool { return last(tap.statuses()) == "ok" })
	time.Sleep(time.Second) // a few more calls on the restored store
	close(stop)
	wg.Wait()
	close(stopHealth)
	<-healthDone

	// A fast call takes a fraction of a second once the store answers: one placed while Redis
	// was down reached the lockout check during the outage or the restore that followed it.
	var across, during, after, verified int
	for _, c := range calls {
		switch {
		case c.outcome != "verified" && c.outcome != "technical_difficulty":
			t.Errorf("a call ended %q, want verified or technical_difficulty:\n%s", c.outcome, c.out)
		case !c.realtime && c.began.After(killed) && c.began.Before(restarted):
			during++
			if c.outcome != "technical_difficulty" {
				t.Errorf("a call placed while Redis was down was %s:\n%s", c.outcome, c.out)
			}
		}
		if c.began.Before(killed) && c.ended.After(killed) {
			across++
		}
		if c.began.After(restarted) && c.outcome == "verified" {
			after++
		}
		if c.outcome == "verified" {
			verified++
		}
	}
	t.Logf("%d calls: %d in progress when Redis died, %d placed while it was down, %d verified, %d of them placed after the restart",
		len(calls), across, during, verified, after)
	if across == 0 || during == 0 || after == 0 {
		t.Errorf("calls in progress at the crash %d, placed during the outage %d, verified after it %d: want some of each", across, during, after)
	}
	if bad.Load() != 0 || checks.Load() < 20 {
		t.Errorf("/healthz failed %d of %d checks", bad.Load(), checks.Load())
	}
	if code, took := p.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM (%v)", code, took)
	}
}

// (c) The server is SIGKILLed with calls in progress, with the audit trail in its own file and
// with the records going through Redis: restarted on the same data directory, it cuts a torn
// last line, every call its caller heard verified has its record, once, and `audit verify`
// passes.
func TestFaultServerKilledUnderLoad(t *testing.T) {
	bin := buildServer(t)
	for _, mode := range []string{"file", "redis"} {
		t.Run(mode, func(t *testing.T) {
			data := t.TempDir()
			var env []string
			if mode == "redis" {
				env = append(env, "CALLPROOF_REDIS="+redistest.Start(t).URL(), "CALLPROOF_NODE_NAME=cp-1")
			}
			p := startServer(t, bin, data, env...)
			p.waitReady(10 * time.Second)

			// Callers in a loop; the calls each caller heard verified.
			var mu sync.Mutex
			verified := map[string]bool{}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 6 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						out, _ := callAt(p.url, "--customer", "cus_ada")
						if outcomeOf(out) == "verified" {
							mu.Lock()
							verified[callIDFrom(t, out)] = true
							mu.Unlock()
						}
					}
				})
			}
			count := func() int { mu.Lock(); defer mu.Unlock(); return len(verified) }
			deadline := time.Now().Add(30 * time.Second)
			for count() < 20 || p.liveCalls() == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d calls verified, %d live", count(), p.liveCalls())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if code, _ := p.stop(syscall.SIGKILL, 10*time.Second); code != -1 {
				t.Fatalf("exit code %d, want killed", code)
			}
			close(stop)
			wg.Wait()

			path := filepath.Join(data, audit.FileName)
			if mode == "file" {
				// A crash in the middle of a write leaves part of a line: here, half a record
				// that was being appended.
				lines := readLines(t, path)
				torn := lines[len(lines)-1][:len(lines[len(lines)-1])/2]
				f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString(torn)
				f.Close()
			}
			p2 := startServer(t, bin, data, env...)
			p2.waitReady(10 * time.Second)
			if mode == "file" && !strings.Contains(p2.logs.String(), "cut a damaged last line") {
				t.Errorf("the torn last line was not cut at start:\n%s", p2.logs.String())
			}
			out, err := callAt(p2.url, "--customer", "cus_ada")
			if err != nil {
				t.Fatalf("a call after the restart: %v\n%s", err, out)
			}
			verified[callIDFrom(t, out)] = true
			// With Redis, the records the killed writer had not taken are forwarded now.
			var calls map[string]int
			deadline = time.Now().Add(15 * time.Second)
			for {
				calls = recordsByCall(t, path)
				missing := 0
				for c := range verified {
					if calls[c] == 0 {
						missing++
					}
				}
				if missing == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d calls heard verified have no record", missing, len(verified))
				}
				time.Sleep(100 * time.Millisecond)
			}
			if code, _ := p2.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
				t.Fatalf("exit code %d after SIGTERM", code)
			}
			var vout bytes.Buffer
			if err := run(context.Background(), []string{"audit", "verify", "--data", data}, nil, nil, &vout, io.Discard); err != nil {
				t.Fatalf("audit verify: %v\n%s", err, vout.String())
			}
			for c := range verified {
				if calls[c] != 1 {
					t.Errorf("call %s has %d records, want 1", c, calls[c])
				}
			}
			t.Logf("%d calls heard verified, all recorded once; %d records in all; %s", len(verified), len(readLines(t, path)),
				strings.TrimSpace(vout.String()))
		})
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// recordsByCall counts the verified records per call id in the audit file (whole lines only).
func recordsByCall(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct{ Call, Outcome string }
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Outcome == "verified" {
			out[r.Call]++
		}
	}
	return out
}

// (d) SIGTERM drains: new calls are refused (503) while a live call finishes verified and its
// record is on disk, and the process exits 0; a call that does not finish is ended at the
// drain deadline, and the process still exits 0.
func TestFaultSIGTERMDrainsProcess(t *testing.T) {
	bin := buildServer(t)
	data := t.TempDir()
	p := startServer(t, bin, data, "CALLPROOF_DRAIN_TIMEOUT=60s")
	callOut := make(chan string, 1)
	go func() {
		out, err := callAt(p.url, "--customer", "cus_ada", "--realtime", "--barge-in")
		callOut <- out + fmt.Sprintf("exit: %v\n", err)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for p.liveCalls() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the call never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if code, body := get(p.url + "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("/readyz while draining: %d %q", code, body)
	}
	if _, err := twilio.Dial(context.Background(), p.url+"/v1/twilio", twilio.CallParams{}); !errors.Is(err, twilio.ErrRejected) {
		t.Errorf("a new call while draining: %v, want refused", err)
	}
	// The caller is verified and the agent gets the token and the end of the call before the
	// server goes (the simulated caller's own JWKS check after that may find it gone).
	out := <-callOut
	for _, want := range []string{"outcome: verified", "(token received)", "agent: call ended (verified)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the live call did not finish verified during the drain (no %q):\n%s", want, out)
		}
	}
	call := callIDFrom(t, out)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit after the drain:\n%s", p.logs.String())
	}
	if code := p.state.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.logs.String())
	}
	if err := run(context.Background(), []string{"audit", "verify", "--data", data}, nil, nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("audit verify after the drain: %v", err)
	}
	if n := recordsByCall(t, filepath.Join(data, audit.FileName))[call]; n != 1 {
		t.Fatalf("the drained call has %d verified records, want 1", n)
	}

	// A caller who never answers outlives a 1 s drain deadline: the call is ended, exit 0.
	p = startServer(t, bin, data, "CALLPROOF_DRAIN_TIMEOUT=1s")
	silent, err := twilio.Dial(context.Background(), p.url+"/v1/twilio", twilio.CallParams{From: "+15555550123"})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for p.liveCalls() == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	code, took := p.stop(syscall.SIGTERM, 15*time.Second)
	if code != 0 || took > 8*time.Second {
		t.Fatalf("exit code %d after %v with a call past the 1 s drain deadline, want 0 soon after it", code, took)
	}
	ended := false
	for ev := range silent.Events() {
		ended = ended || ev.Kind == "closed"
	}
	if !ended {
		t.Fatal("the silent call's stream did not end")
	}
	t.Logf("a call past the drain deadline: exit 0 after %v", took.Round(10*time.Millisecond))
	if err := run(context.Background(), []string{"audit", "verify", "--data", data}, nil, nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("audit verify after the deadline: %v", err)
	}
}
