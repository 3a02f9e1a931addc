package wsjson

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
)

// testServer runs streams through an Acceptor. The first text message starts a stream; every
// text message is recorded; a stream lives until its client goes or the test ends.
type testServer struct {
	*httptest.Server
	limit   int64
	mu      sync.Mutex
	streams []*testStream
	wg      sync.WaitGroup
}

type testStream struct {
	s    *Stream
	mu   sync.Mutex
	msgs []string
}

// ended is closed once the stream has closed its connection and its reader has finished.
func (ts *testStream) ended() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		<-ts.s.closed
		<-ts.s.readerDone
		close(ch)
	}()
	return ch
}

func (ts *testStream) messages() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.msgs)
}

func newTestServer(t *testing.T, limit int64) *testServer {
	t.Helper()
	srv := &testServer{limit: limit}
	a := NewAcceptor(ServeConfig{Name: "test", StartTimeout: 10 * time.Second,
		Serve: func(ctx context.Context, _ media.Leg) { <-ctx.Done() }}, nil, nil)
	srv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.wg.Add(1)
		defer srv.wg.Done()
		ts := &testStream{}
		a.Accept(w, r, func(conn *websocket.Conn, cancel context.CancelFunc) (*Stream, media.Leg) {
			ts.s = New(conn, Config{Name: "test", ReadLimit: limit, Cancel: cancel, Handle: func(data []byte) error {
				ts.mu.Lock()
				ts.msgs = append(ts.msgs, string(data))
				ts.mu.Unlock()
				if ts.s.Start() == nil {
					ts.s.Started(&media.Start{CallID: "c", StreamID: "s"}, Wire{Codec: Ulaw})
				}
				return nil
			}})
			srv.mu.Lock()
			srv.streams = append(srv.streams, ts)
			srv.mu.Unlock()
			return ts.s, nil
		})
	}))
	t.Cleanup(func() {
		srv.Close()
		srv.wg.Wait()
		a.Wait()
	})
	return srv
}

// dial opens a WebSocket to the server and returns its raw connection, for hand-made frames.
func (srv *testServer) dial(t testing.TB) net.Conn {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn.NetConn()
}

// last returns the stream the server opened last, once it exists.
func (srv *testServer) last(t testing.TB, n int) *testStream {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		srv.mu.Lock()
		if len(srv.streams) >= n {
			ts := srv.streams[n-1]
			srv.mu.Unlock()
			return ts
		}
		srv.mu.Unlock()
	}
	t.Fatal("the server opened no stream")
	return nil
}

// outcome is what a stream made of its client's bytes.
type outcome struct {
	msgs    []string
	code    int
	reason  string
	replies []string // frames sent back, "op:payload"
}

// feed sends in to a fresh stream in chunks of at most chunk bytes (pausing between them so
// that the server reads them apart), then closes the client's writing half, and returns what
// the stream made of it.
func feed(t *testing.T, srv *testServer, n int, in []byte, chunk int, rng *rand.Rand) outcome {
	t.Helper()
	c := srv.dial(t)
	defer c.Close()
	frames := make(chan []serverFrame, 1)
	go func() { frames <- readServerFrames(c) }()
	for len(in) > 0 {
		k := min(len(in), 1+rng.IntN(chunk))
		if _, err := c.Write(in[:k]); err != nil {
			break // the server closed on a violation
		}
		in = in[k:]
		if chunk < len(in) {
			time.Sleep(200 * time.Microsecond)
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	ts := srv.last(t, n)
	select {
	case <-ts.ended():
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end")
	}
	code, reason := ts.s.CloseStatus()
	o := outcome{msgs: ts.messages(), code: code, reason: reason}
	for _, f := range <-frames {
		o.replies = append(o.replies, fmt.Sprintf("%d:%q", f.op, f.payload))
	}
	return o
}

// TestPolledStreamReadsLikeItsGoroutine: every input of the framing test, whole or cut into
// small pieces that arrive apart, gives the same messages, close status and replies whether a
// poller or a goroutine of its own reads the stream.
func TestPolledStreamReadsLikeItsGoroutine(t *testing.T) {
	big := strings.Repeat("0123456789", 7000)
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	inputs := []struct {
		name  string
		limit int64
		in    []byte
	}{
		{"messages then close", 1 << 20, cat(text1(`{"a":1}`), text1(""), text1(strings.Repeat("x", 300)),
			text1(big), clientFrame(true, opClose, closePayload(1000, "bye")))},
		{"fragments with a ping between", 1 << 20, cat(text1("first"), clientFrame(false, opText, []byte("ab")),
			clientFrame(true, opPing, []byte("p1")), clientFrame(false, opContinuation, []byte("cd")),
			clientFrame(true, opPong, []byte("x")), clientFrame(true, opContinuation, []byte("ef")), text1("next"))},
		{"over the limit", 64, cat(text1("first"), text1(strings.Repeat("y", 65)), text1("after"))},
		{"over the limit, fragmented", 64, cat(text1("first"), clientFrame(false, opText, []byte(strings.Repeat("a", 40))),
			clientFrame(true, opContinuation, []byte(strings.Repeat("b", 40))))},
		{"binary", 1 << 20, cat(text1("first"), clientFrame(true, opBinary, []byte{1, 2}))},
		{"unmasked", 100, cat(text1("first"), []byte{finBit | opText, 1, 'a'})},
		{"continuation first", 100, cat(text1("first"), clientFrame(true, opContinuation, []byte("a")))},
		{"bad close code", 100, cat(text1("first"), clientFrame(true, opClose, closePayload(1005, "")))},
		{"application close code", 100, cat(text1("first"), clientFrame(true, opClose, closePayload(4000, "app")))},
		{"cut inside a frame", 100, cat(text1("first"), text1("abcdef")[:5])},
		{"many media messages", 1 << 16, bytes.Repeat(text1(`{"event":"media","media":{"payload":"`+strings.Repeat("/w==", 54)+`"}}`), 200)},
	}
	defer func(v bool) { pollEnabled = v }(pollEnabled)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range inputs {
		t.Run(tc.name, func(t *testing.T) {
			var want outcome
			for i, mode := range []struct {
				poll  bool
				chunk int
			}{{false, 1 << 30}, {true, 1 << 30}, {true, 7}, {false, 7}, {true, 1}} {
				chunk := mode.chunk
				if len(tc.in) > 4096 && chunk < 1000 {
					chunk *= 500 // pieces that still cut most frames, without taking minutes
				}
				pollEnabled = mode.poll
				srv := newTestServer(t, tc.limit)
				got := feed(t, srv, 1, tc.in, chunk, rng)
				if polled := srv.last(t, 1).s.polled != nil; polled != (mode.poll && runtime.GOOS == "linux") {
					t.Fatalf("polled %v, want %v", polled, mode.poll)
				}
				if len(got.msgs) == 0 || got.code == 0 {
					t.Fatalf("poll %v chunk %d: %d messages, close %d %q", mode.poll, mode.chunk, len(got.msgs), got.code, got.reason)
				}
				if i == 0 {
					want = got
					continue
				}
				if !slices.Equal(got.msgs, want.msgs) || got.code != want.code || got.reason != want.reason ||
					!slices.Equal(got.replies, want.replies) {
					t.Errorf("poll %v chunk %d:\n got %d messages, close %d %q, replies %q\nwant %d messages, close %d %q, replies %q",
						mode.poll, mode.chunk, len(got.msgs), got.code, got.reason, got.replies,
						len(want.msgs), want.code, want.reason, want.replies)
				}
			}
		})
	}
}
