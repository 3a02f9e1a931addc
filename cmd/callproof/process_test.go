package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/redis/redistest"
)

// Two server processes share one Redis: a call on one, its agent on the other; the agent's
// process is killed (SIGKILL) mid-call, the agent reconnects to the other with the last event
// id it saw and misses nothing, and receives the token.
func TestTwoProcessesAgentNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs two server processes")
	}
	bin := filepath.Join(t.TempDir(), "callproof")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv := redistest.Start(t)
	dir, _ := filepath.Abs("../../kba/demo_directory.yaml")
	start := func(data string) (*exec.Cmd, string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cmd := exec.Command(bin, "serve", "--http", addr)
		cmd.Env = append(os.Environ(), "CALLPROOF_DATA="+data, "CALLPROOF_DIRECTORY="+dir,
			"CALLPROOF_REDIS="+srv.URL(), "CALLPROOF_AGENT_KEYS="+testAgentKey, "CALLPROOF_LOG_LEVEL=warn")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		base := "http://" + addr
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if resp, err := http.Get(base + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return cmd, base
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("server at %s never became ready", base)
		return nil, ""
	}
	dataA, dataB := t.TempDir(), t.TempDir()
	_, a := start(dataA)
	for _, name := range []string{"server-key", "signing-key.pem"} { // one deployment's keys
		b, err := os.ReadFile(filepath.Join(dataA, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dataB, name), b, 0o600)
	}
	procB, b := start(dataB)

	conn := dialAgent(t, b, "")
	callOut := make(chan string, 1)
	go func() {
		out, _ := exec.Command(bin, "call", "--server", a, "--agent-key", testAgentKey, "--customer", "cus_ada",
			"--realtime", "--barge-in", "--audiosocket", "127.0.0.1:1", "--sip", "127.0.0.1:1").CombinedOutput()
		callOut <- string(out)
	}()
	var got []sessions.AgentMessage
	for len(got) < 3 {
		m := readAgent(t, conn)
		got = append(got, m)
	}
	call := got[0].Call
	if err := procB.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	procB.Wait()
	conn.Close()
	conn = dialAgent(t, a, got[len(got)-1].ID)
	defer conn.Close()
	token := ""
	for {
		m := readAgent(t, conn)
		if m.Call != call {
			continue
		}
		got = append(got, m)
		if m.Type == "verified" {
			token = m.Token
		}
		if m.Type == "call" && m.State == "ended" {
			break
		}
	}
	var types []string
	for _, m := range got {
		types = append(types, m.Type)
	}
	want := "call,step,step,step,step,step,step,step,verified,call"
	if strings.Join(types, ",") != want || token == "" {
		t.Fatalf("agent saw %v, want %s with a token", types, want)
	}
	if out := <-callOut; !strings.Contains(out, "outcome: verified") {
		t.Fatalf("call:\n%s", out)
	}
	if _, err := checkToken(context.Background(), callOptions{server: a, issuer: "callproof", audience: "callproof-agent"}, token); err != nil {
		t.Fatalf("token: %v", err)
	}
}
