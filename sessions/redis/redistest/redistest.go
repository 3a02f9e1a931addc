// Package redistest owns the real redis-server processes that Callproof's tests run
// against: the shared server scripts/test.sh starts (CALLPROOF_TEST_REDIS_ADDR), or a
// private one per test on a free loopback port, which a test may also stop and restart.
// A missing redis-server fails the test; it is never skipped.
package redistest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvAddr names the variable holding the shared test server's host:port.
const EnvAddr = "CALLPROOF_TEST_REDIS_ADDR"

// Addr returns the shared test server's address when EnvAddr is set, or else starts a
// private server that stops when t ends. Tests on the shared server keep apart by Prefix.
func Addr(t testing.TB) string {
	t.Helper()
	if a := os.Getenv(EnvAddr); a != "" {
		return a
	}
	return Start(t).Addr
}

// Prefix returns a key prefix unique to this call, such as "test:3f9a...:".
func Prefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "test:" + hex.EncodeToString(b[:]) + ":"
}

// Server is a private redis-server on 127.0.0.1, without persistence.
type Server struct {
	// Addr is host:port; it stays the same across Restart.
	Addr string

	t    testing.TB
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// Start starts a private redis-server on a free loopback port; it is stopped when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redistest: redis-server not found (install it: apt-get install redis-server): %v", err)
	}
	s := &Server{t: t, dir: t.TempDir()}
	var err error
	for range 5 { // another process may take the free port before redis-server binds it
		if s.port, err = freePort(); err != nil {
			continue
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		if err = s.start(); err == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("redistest: cannot start redis-server: %v", err)
	return nil
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr }

func (s *Server) start() error {
	cmd, done, err := launch(s.Addr, s.dir, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// launch starts redis-server with argv and waits until addr answers PING. done is closed when
// the process has exited; dir holds its redis.log, named in errors.
func launch(addr, dir string, argv ...string) (*exec.Cmd, chan struct{}, error) {
	cmd := exec.Command("redis-server", argv...)
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(addr) {
			return cmd, done, nil
		}
		select {
		case <-done:
			return nil, nil, fmt.Errorf("redis-server exited at start (see %s)", filepath.Join(dir, "redis.log"))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return nil, nil, fmt.Errorf("redis-server on %s did not answer PING", addr)
		}
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Kill kills the server with SIGKILL, as a crash would, and waits for it. Killing a stopped
// server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Reserve returns a private server on a free loopback port without starting it, for a test
// whose Redis is down when it begins: Restart starts it. It is stopped when t ends.
func Reserve(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redistest: redis-server not found (install it: apt-get install redis-server): %v", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("redistest: free port: %v", err)
	}
	s := &Server{t: t, dir: t.TempDir(), port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	t.Cleanup(s.Stop)
	return s
}

// Restart stops the server if it runs and starts it again on the same port, empty (or starts
// a Reserved server for the first time).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for range 50 { // the port can stay busy for a moment
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart: %v", err)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}
