package wsjson

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestPeerWritesPastAFullSocket: a peer's frames go to its socket directly while it takes
// them and through the connection once it is full. A server that reads nothing for a while
// is sent 16 MiB, far past what the sockets hold; once it reads, every message arrives whole
// and in order; after Close, a send fails with ErrClosed.
func TestPeerWritesPastAFullSocket(t *testing.T) {
	const messages, size = 16 << 10, 1 << 10
	release := make(chan struct{})
	got := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			got <- err
			return
		}
		defer conn.Close()
		<-release
		for i := range messages {
			_, data, err := conn.ReadMessage()
			if err != nil {
				got <- fmt.Errorf("message %d: %w", i, err)
				return
			}
			if want := message(i, size); string(data) != want {
				got <- fmt.Errorf("message %d: %q..., want %q...", i, data[:20], want[:20])
				return
			}
		}
		got <- nil
		_, _, _ = conn.ReadMessage() // until the peer closes
	}))
	defer srv.Close()
	u, err := DialURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := Dial(context.Background(), nil, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	errClosed := errors.New("closed")
	p := NewPeer(conn, PeerConfig[string]{ErrClosed: errClosed,
		Handle: func(int, []byte) error { return nil },
		Closed: func(code int, reason string, err, failure error) string { return reason }})
	if runtime.GOOS == "linux" && p.fd < 0 {
		t.Fatal("the peer does not write to its socket directly")
	}
	p.Run()
	sent := make(chan error, 1)
	go func() {
		sent <- p.Writes(func(send func([]byte) error) error {
			for i := range messages {
				if err := send([]byte(message(i, size))); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	select {
	case err := <-sent:
		t.Fatalf("16 MiB went out to a server that reads nothing (%v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Writes(func(send func([]byte) error) error { return send([]byte("late")) }); err != errClosed {
		t.Errorf("send after Close: %v, want ErrClosed", err)
	}
}

// message is the i'th test message: its number, then filler up to size bytes.
func message(i, size int) string {
	s := fmt.Sprintf("%08d", i)
	return s + strings.Repeat("x", size-len(s))
}
