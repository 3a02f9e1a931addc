package wsjson

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPolledRead measures what a poller spends on one inbound Twilio media message: the
// read(2) of a loopback socket holding it and its parsing into the stream's handler (a no-op
// here), without the epoll round it shares with the other ready sockets.
func BenchmarkPolledRead(b *testing.B) {
	client, server := tcpPair(b)
	msg := []byte(`{"event":"media","sequenceNumber":"2","streamSid":"MZ1","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"` +
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 160)) + `"}}`)
	frame := text1(string(msg))
	got := 0
	s := New(nil, Config{Name: "bench", ReadLimit: 1 << 16, Handle: func(data []byte) error {
		if len(data) == len(msg) {
			got++
		}
		return nil
	}})
	s.usePoller(server)
	if s.polled == nil {
		b.Fatal("the stream is not polled")
	}
	defer syscall.Close(s.polled.fd) // never registered: nothing else to undo
	buf := make([]byte, pollBufferSize)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if _, err := client.Write(frame); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for want := got + 1; got < want; {
			if _, err := s.readPolled(s.polled.fd, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestPolledReadsWhatARoundLeft: the poller's events are edge-triggered, so a socket whose
// read filled the poller's buffer gets no new event for what it still holds, and an end that
// arrived with the data gets none either. A poller with a 50-byte buffer is given 100
// messages in one write: all must arrive with nothing more sent; then the same with the end
// sent right after them.
func TestPolledReadsWhatARoundLeft(t *testing.T) {
	for _, end := range []bool{false, true} {
		client, server := tcpPair(t)
		var mu sync.Mutex
		var got []string
		received := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(got)
		}
		s := New(nil, Config{Name: "test", ReadLimit: 1 << 16, Handle: func(data []byte) error {
			mu.Lock()
			got = append(got, string(data))
			mu.Unlock()
			return nil
		}})
		s.usePoller(server)
		if s.polled == nil {
			t.Fatal("the stream is not polled")
		}
		p, err := newPoller()
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(p.epfd)
		p.buf = p.buf[:50]
		s.polled.p = p
		var in, want []string
		for i := range 100 {
			m := fmt.Sprintf(`{"event":"media","n":%d}`, i)
			want = append(want, m)
			in = append(in, string(text1(m)))
		}
		// All of it is in the socket before the poller first looks: one event, 2.6 KB to read.
		if _, err := client.Write([]byte(strings.Join(in, ""))); err != nil {
			t.Fatal(err)
		}
		closeWrite := func() {
			if err := client.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
		}
		if end {
			closeWrite()
		}
		time.Sleep(10 * time.Millisecond)
		if err := s.polled.start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Second); len(received()) < len(want) && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if got := received(); !slices.Equal(got, want) {
			t.Fatalf("end sent %v: got %d messages, want the 100 in order", end, len(got))
		}
		if !end {
			closeWrite()
		}
		select {
		case <-s.readerDone:
		case <-time.After(5 * time.Second):
			t.Fatalf("end sent %v: the reader did not reach the end", end)
		}
		if err := s.polled.Close(); err != net.ErrClosed && err != nil {
			t.Fatal(err)
		}
	}
}

// TestPolledStreamsAtOnce: many streams on the pollers at once each get their own messages, in
// order, and the pollers stop once every stream has ended.
func TestPolledStreamsAtOnce(t *testing.T) {
	const streams, messages = 100, 50
	srv := newTestServer(t, 1<<16)
	conns := make([]net.Conn, streams)
	for i := range conns {
		conns[i] = srv.dial(t)
		srv.last(t, i+1)
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for j := range messages {
				if _, err := c.Write(text1(fmt.Sprintf("%d/%d", i, j))); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	for i := range conns {
		ts := srv.last(t, i+1)
		if ts.s.polled == nil {
			t.Fatal("stream not polled")
		}
		want := make([]string, messages)
		for j := range want {
			want[j] = fmt.Sprintf("%d/%d", i, j)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !slices.Equal(ts.messages(), want) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := ts.messages(); !slices.Equal(got, want) {
			t.Fatalf("stream %d got %d messages, want %d in order", i, len(got), messages)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	for i := range conns {
		<-srv.last(t, i+1).ended()
	}
	for _, p := range pollers {
		deadline := time.Now().Add(5 * time.Second)
		for {
			p.mu.Lock()
			live, running := p.live, p.running
			p.mu.Unlock()
			if live == 0 && !running {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("poller still has %d streams (running %v)", live, running)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestPolledWrites: a polled stream's writes wait while the peer does not read, give up at
// their deadline, and stop when the connection closes; a peer that reads slowly gets all.
func TestPolledWrites(t *testing.T) {
	srv := newTestServer(t, 1<<16)
	open := func(n int) (net.Conn, *Stream) {
		c := srv.dial(t)
		if _, err := c.Write(text1("start")); err != nil {
			t.Fatal(err)
		}
		ts := srv.last(t, n)
		for ts.s.Start() == nil {
			time.Sleep(time.Millisecond)
		}
		if ts.s.polled == nil {
			t.Fatal("stream not polled")
		}
		return c, ts.s
	}
	big := make([]byte, 32<<20)

	// Nobody reads: the write stops at its deadline.
	c, s := open(1)
	pc := s.polled
	_ = pc.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	began := time.Now()
	n, err := pc.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n == len(big) {
		t.Fatalf("write to a peer that does not read: %d bytes, %v", n, err)
	}
	if waited := time.Since(began); waited < 250*time.Millisecond {
		t.Errorf("gave up after %s, before the deadline", waited)
	}

	// Closed while a write waits: it returns at once.
	_ = pc.SetWriteDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, err := pc.Write(big); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	_ = pc.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("write during close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a waiting write outlived Close")
	}
	c.Close()

	// A slow reader gets everything.
	c, s = open(2)
	defer c.Close()
	got := make(chan int, 1)
	go func() {
		total, buf := 0, make([]byte, 64<<10)
		for total < 4<<20 {
			n, err := c.Read(buf)
			total += n
			if err != nil {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		got <- total
	}()
	_ = s.polled.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if n, err := s.polled.Write(big[:4<<20]); err != nil || n != 4<<20 {
		t.Fatalf("write to a slow reader: %d bytes, %v", n, err)
	}
	if total := <-got; total < 4<<20 {
		t.Errorf("the reader got %d bytes", total)
	}
}

// TestRoundInterval: rounds aim at about forty frames, within 2 to 5 ms.
func TestRoundInterval(t *testing.T) {
	for _, c := range []struct {
		live int
		want time.Duration
	}{{0, 5 * time.Millisecond}, {1, 5 * time.Millisecond}, {160, 5 * time.Millisecond},
		{200, 4 * time.Millisecond}, {320, 2500 * time.Microsecond}, {400, 2 * time.Millisecond},
		{500, 2 * time.Millisecond}, {5000, 2 * time.Millisecond}} {
		if got := roundInterval(c.live); got != c.want {
			t.Errorf("roundInterval(%d) = %v, want %v", c.live, got, c.want)
		}
	}
}

// A server that runs on fewer processors while its load is light (GOMAXPROCS lowered after
// start-up) still spreads its streams over a poller per processor it started with: pollers
// counted when the first stream arrived gave a 2,000-call server started on one processor a
// single poller, and twice the p99 of `verified`.
func TestPollersAreTheStartupProcessors(t *testing.T) {
	started := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	srv := newTestServer(t, 1<<16)
	c := srv.dial(t)
	defer c.Close()
	srv.last(t, 1)                         // the stream runs, on a poller
	if _, err := pollerFor(); err != nil { // and so synchronised with the pollers' creation
		t.Fatal(err)
	}
	if len(pollers) != started {
		t.Fatalf("%d pollers for a process started with %d processors", len(pollers), started)
	}
}
