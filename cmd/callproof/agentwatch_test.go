package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions"
)

// The load's agent stream reader runs in a process of its own and hands each call's
// `verified` message times to the call that expects them, whether they arrive before or
// after it asks; other messages and other calls' are not handed over. When no process can be
// started the load reads the stream itself and says so; a refused key is an error, not a
// reason to read it in-process.
func TestAgentWatch(t *testing.T) {
	n := startNode(t, nil)
	publish := func(m sessions.AgentMessage) time.Time {
		t.Helper()
		m.At = time.Now().UTC()
		if err := n.app.hub.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		return m.At
	}
	// Each check uses calls of its own: a new subscriber is sent the messages of calls still
	// in progress.
	check := func(t *testing.T, a *agentWatch, tag string) {
		t.Helper()
		early := "CA" + tag + strings.Repeat("e", 31)
		earlyAt := publish(sessions.AgentMessage{Type: "verified", Call: early, Level: "reasonable"})
		time.Sleep(200 * time.Millisecond) // let it arrive before anyone expects it
		late := "CA" + tag + strings.Repeat("f", 31)
		ch := a.expect(late)
		defer a.forget(late)
		publish(sessions.AgentMessage{Type: "call", Call: late, State: "started"})
		publish(sessions.AgentMessage{Type: "verified", Call: "CA" + tag + strings.Repeat("0", 31), Level: "reasonable"})
		lateAt := publish(sessions.AgentMessage{Type: "verified", Call: late, Level: "reasonable"})
		for _, c := range []struct {
			ch  chan verdictSeen
			at  time.Time
			who string
		}{{ch, lateAt, "expected first"}, {a.expect(early), earlyAt, "arrived first"}} {
			select {
			case v := <-c.ch:
				if !v.published.Equal(c.at) || v.read.Before(c.at) {
					t.Errorf("%s: published %v read %v; want published %v and read after it", c.who, v.published, v.read, c.at)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: no verified message handed over", c.who)
			}
		}
		select {
		case v := <-ch:
			t.Errorf("a second verdict for one call: %+v", v)
		case <-time.After(100 * time.Millisecond):
		}
	}

	t.Run("process", func(t *testing.T) {
		var progress bytes.Buffer
		a, err := watchAllAgents(context.Background(), n.url, testAgentKey, &progress)
		if err != nil {
			t.Fatal(err)
		}
		if a.reader != "agent process" || progress.Len() != 0 {
			t.Fatalf("read by the %s (%q), want the agent process", a.reader, progress.String())
		}
		if a.pid == os.Getpid() || syscall.Kill(a.pid, 0) != nil {
			t.Fatalf("agent process %d: not a live child of %d", a.pid, os.Getpid())
		}
		check(t, a, "1")
		a.close()
		if err := syscall.Kill(a.pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("agent process %d after close: %v, want gone", a.pid, err)
		}
	})

	t.Run("no process", func(t *testing.T) {
		defer func(f func() (string, error)) { agentWatchExecutable = f }(agentWatchExecutable)
		agentWatchExecutable = func() (string, error) { return "", errors.New("no executable here") }
		var progress bytes.Buffer
		a, err := watchAllAgents(context.Background(), n.url, testAgentKey, &progress)
		if err != nil {
			t.Fatal(err)
		}
		defer a.close()
		if a.reader != "load process" || !strings.Contains(progress.String(), "no executable here") {
			t.Fatalf("read by the %s (%q), want the load process, and why", a.reader, progress.String())
		}
		check(t, a, "2")
	})

	t.Run("refused", func(t *testing.T) {
		var progress bytes.Buffer
		_, err := watchAllAgents(context.Background(), n.url, "ak_wrong_key_0123456789", &progress)
		if err == nil || !strings.Contains(err.Error(), "401") || progress.Len() != 0 {
			t.Fatalf("wrong key: %v (%q); want the server's 401 from the reader process", err, progress.String())
		}
	})
}
