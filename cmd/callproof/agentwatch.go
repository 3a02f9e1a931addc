package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/sessions"
)

// agentWatchEnv, set in the environment of callproof's own executable, makes the process the
// agent stream reader of a `callproof load` run instead of the command its arguments name:
// the value is the server's URL, CALLPROOF_AGENT_KEY the agent key (in the environment, which
// only the user can read, never on the command line).
const agentWatchEnv = "CALLPROOF_LOAD_AGENT_WATCH"

// agentWatchExecutable is the program startProcess runs (a test's stand-in for a missing one).
var agentWatchExecutable = os.Executable

// agentWatch is one agent WebSocket subscribed to every call; it hands each call's
// `verified` message times to whoever expects it.
//
// The stream is read by a process of its own, as an agent's desktop would read it: in the
// load's process its reader waited its turn behind thousands of callers' goroutines, up to
// 16 ms at 2,000 calls, and that wait was counted as the server's latency.
type agentWatch struct {
	reader string // "agent process" or "load process"
	pid    int    // the agent process's
	stop   func()

	mu      sync.Mutex
	waiting map[string]chan verdictSeen
	early   map[string]verdictSeen
}

// verdictSeen is when a call's `verified` message was read off the agent stream, and the
// time the server stamped on it (its "at").
type verdictSeen struct {
	read, published time.Time
}

// watchAllAgents subscribes to every call's agent messages, from a child process when one can
// be started, else from this one.
func watchAllAgents(ctx context.Context, server, key string, progress io.Writer) (*agentWatch, error) {
	a := &agentWatch{waiting: map[string]chan verdictSeen{}, early: map[string]verdictSeen{}}
	err := a.startProcess(ctx, server, key)
	var notStarted errAgentProcess
	switch {
	case err == nil:
		return a, nil
	case !errors.As(err, &notStarted):
		return nil, fmt.Errorf("agent stream: %w", err)
	}
	fmt.Fprintf(progress, "load: the agent stream is read in the load's own process (%v); its waits count in the latencies\n", err)
	conn, err := dialAgentStream(ctx, server, key, subscribeAll)
	if err != nil {
		return nil, fmt.Errorf("agent stream: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		readVerdicts(conn, a.seen)
	}()
	a.reader, a.stop = "load process", func() { conn.Close(); <-done }
	return a, nil
}

// errAgentProcess is a reader process that could not be started at all.
type errAgentProcess struct{ err error }

func (e errAgentProcess) Error() string { return "no reader process: " + e.err.Error() }

// startProcess runs the reader (agentWatchProcess) in a child process: it answers "ready" once
// subscribed, or "error" and why, then one line per `verified` message. Closing its stdin
// stops it.
func (a *agentWatch) startProcess(ctx context.Context, server, key string) error {
	self, err := agentWatchExecutable()
	if err != nil {
		return errAgentProcess{err}
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), agentWatchEnv+"="+server, "CALLPROOF_AGENT_KEY="+key)
	cmd.Stderr = os.Stderr // nothing, unless it crashes: what it has to say comes on stdout
	in, err := cmd.StdinPipe()
	if err != nil {
		return errAgentProcess{err}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return errAgentProcess{err}
	}
	if err := cmd.Start(); err != nil {
		return errAgentProcess{err}
	}
	exited := make(chan struct{})
	stop := func() {
		in.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	ready := make(chan error, 1)
	go func() {
		defer close(exited)
		defer cmd.Wait() //nolint:errcheck // its exit says nothing the lines did not
		r := bufio.NewReader(out)
		first, err := r.ReadString('\n')
		switch {
		case err != nil:
			ready <- errors.New("agent reader process exited before subscribing")
			return
		case strings.HasPrefix(first, "error "):
			ready <- errors.New(strings.TrimSpace(strings.TrimPrefix(first, "error ")))
			return
		case first != "ready\n":
			ready <- fmt.Errorf("agent reader process: unexpected %q", first)
			return
		}
		ready <- nil
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if call, v, ok := parseVerdictLine(line); ok {
				a.seen(call, v)
			}
		}
	}()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = errors.New("agent reader process not subscribed after 30 s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		in.Close()
		_ = cmd.Process.Kill()
		<-exited
		return err
	}
	a.reader, a.pid, a.stop = "agent process", cmd.Process.Pid, stop
	return nil
}

// asAgentWatchChild runs this process as a load's agent stream reader when the load started it
// so (agentWatchEnv is set), and reports its exit code; ok is false for any other process.
// callproof's main and the test binary's TestMain both call it first.
func asAgentWatchChild(ctx context.Context) (code int, ok bool) {
	server := os.Getenv(agentWatchEnv)
	if server == "" {
		return 0, false
	}
	return agentWatchProcess(ctx, server, os.Getenv("CALLPROOF_AGENT_KEY"), os.Stdin, os.Stdout), true
}

// agentWatchProcess is the child's side of startProcess: it reads the agent stream until the
// load closes its stdin or the server closes the stream.
func agentWatchProcess(ctx context.Context, server, key string, stdin io.Reader, stdout io.Writer) int {
	w := bufio.NewWriter(stdout)
	conn, err := dialAgentStream(ctx, server, key, subscribeAll)
	if err != nil {
		fmt.Fprintf(w, "error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		w.Flush()
		return 1
	}
	fmt.Fprintln(w, "ready")
	if w.Flush() != nil {
		return 1
	}
	go func() {
		_, _ = io.Copy(io.Discard, stdin) // EOF: the load is done, or gone
		conn.Close()
	}()
	readVerdicts(conn, func(call string, v verdictSeen) {
		fmt.Fprintf(w, "v %s %d %d\n", call, v.read.UnixNano(), v.published.UnixNano())
		if w.Flush() != nil {
			conn.Close()
		}
	})
	return 0
}

// parseVerdictLine parses a "v CALL READ PUBLISHED" line (unix nanoseconds).
func parseVerdictLine(line string) (string, verdictSeen, bool) {
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "v" {
		return "", verdictSeen{}, false
	}
	read, err1 := strconv.ParseInt(f[2], 10, 64)
	pub, err2 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil {
		return "", verdictSeen{}, false
	}
	v := verdictSeen{read: time.Unix(0, read)}
	if pub > 0 {
		v.published = time.Unix(0, pub)
	}
	return f[1], v, true
}

// dialAgentStream opens the agent stream and sends sub, a subscribe message.
func dialAgentStream(ctx context.Context, server, key string, sub map[string]any) (*websocket.Conn, error) {
	u, err := wsURL(server, "/v1/agent")
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+key)
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, u, h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	if err := conn.WriteJSON(sub); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// subscribeAll is the subscribe message for every call.
var subscribeAll = map[string]any{"type": "subscribe", "all": true}

// readVerdicts reads conn until it closes and hands each `verified` message's times to seen.
func readVerdicts(conn *websocket.Conn, seen func(call string, v verdictSeen)) {
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		at := time.Now()
		if !bytes.Contains(data, []byte(`"verified"`)) { // most messages: decode only the ones that count
			continue
		}
		var m sessions.AgentMessage
		if json.Unmarshal(data, &m) != nil || m.Type != "verified" || m.Call == "" || strings.ContainsAny(m.Call, " \t\r\n") {
			continue
		}
		seen(m.Call, verdictSeen{read: at, published: m.At})
	}
}

// seen hands a call's times to the call waiting for them, or keeps them until it asks.
func (a *agentWatch) seen(call string, v verdictSeen) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ch, ok := a.waiting[call]; ok {
		select {
		case ch <- v:
		default:
		}
	} else if len(a.early) < 100000 {
		a.early[call] = v
	}
}

func (a *agentWatch) expect(call string) chan verdictSeen {
	ch := make(chan verdictSeen, 1)
	a.mu.Lock()
	if v, ok := a.early[call]; ok {
		ch <- v
		delete(a.early, call)
	}
	a.waiting[call] = ch
	a.mu.Unlock()
	return ch
}

func (a *agentWatch) forget(call string) {
	a.mu.Lock()
	delete(a.waiting, call)
	a.mu.Unlock()
}

func (a *agentWatch) close() { a.stop() }
