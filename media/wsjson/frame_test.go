package wsjson

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// clientFrame is one frame as a client sends it: masked (RFC 6455 §5.3).
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= finBit
	}
	b := []byte{b0, maskBit}
	switch n := len(payload); {
	case n <= 125:
		b[1] |= byte(n)
	case n <= 0xffff:
		b[1] |= 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] |= 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

func text1(s string) []byte { return clientFrame(true, opText, []byte(s)) }

func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// serverFrame is a frame the server wrote, as read back.
type serverFrame struct {
	op      byte
	payload []byte
}

// readServerFrames parses unmasked, final server frames from r until it fails.
func readServerFrames(r io.Reader) []serverFrame {
	br := bufio.NewReader(r)
	var out []serverFrame
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return out
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var x [2]byte
			if _, err := io.ReadFull(br, x[:]); err != nil {
				return out
			}
			n = uint64(binary.BigEndian.Uint16(x[:]))
		case 127:
			var x [8]byte
			if _, err := io.ReadFull(br, x[:]); err != nil {
				return out
			}
			n = binary.BigEndian.Uint64(x[:])
		}
		if h[0]&finBit == 0 || h[1]&maskBit != 0 {
			return append(out, serverFrame{op: 0xff})
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return out
		}
		out = append(out, serverFrame{op: h[0] & 0x0f, payload: p})
	}
}

// pipeConn returns the server's end of a loopback connection whose client sends in and then
// shuts its writing half; the frames the server sent come back on the returned channel once
// the test closes the server's end.
func pipeConn(t testing.TB, bufSize int, in []byte) (*wsConn, <-chan []serverFrame) {
	t.Helper()
	client, server := tcpPair(t)
	frames := make(chan []serverFrame, 1)
	go func() { frames <- readServerFrames(client) }()
	go func() {
		_, _ = client.Write(in)
		_ = client.(*net.TCPConn).CloseWrite()
	}()
	t.Cleanup(func() { client.Close(); server.Close() })
	return &wsConn{nc: server, src: server, buf: make([]byte, bufSize)}, frames
}

type readResult struct {
	op   int
	data string
	err  error
}

// readAll calls next until it fails with something other than errTooBig.
func readAll(c *wsConn, limit int64) []readResult {
	var out []readResult
	for {
		op, data, err := c.next(limit)
		out = append(out, readResult{op, string(data), err})
		if err != nil && err != errTooBig {
			return out
		}
	}
}

// TestFrameRead: the stream's reader returns whole data messages however they are framed,
// answers pings, echoes close frames, skips messages over the limit without losing its place,
// and refuses what RFC 6455 forbids with close 1002, as gorilla/websocket did before it.
func TestFrameRead(t *testing.T) {
	big := strings.Repeat("0123456789", 7000) // 70 000 bytes: a 64-bit length
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	type sent struct {
		op      byte
		payload string
	}
	for _, tc := range []struct {
		name   string
		buf    int
		limit  int64
		in     []byte
		want   []readResult
		reply  []sent // frames the server sent back
		closed string // the read error that ends the stream
	}{
		{name: "one frame each", buf: 4096, limit: 1 << 20,
			in:   cat(text1(`{"a":1}`), text1(""), clientFrame(true, opBinary, []byte{1, 2}), clientFrame(true, opClose, closePayload(1000, "bye"))),
			want: []readResult{{opText, `{"a":1}`, nil}, {opText, "", nil}, {opBinary, "\x01\x02", nil}}, closed: "websocket: close 1000 (normal): bye",
			reply: []sent{{opClose, "\x03\xe8"}}},
		{name: "larger than the buffer", buf: 64, limit: 1 << 20,
			in:   cat(text1(strings.Repeat("x", 300)), text1(big), clientFrame(true, opClose, nil)),
			want: []readResult{{opText, strings.Repeat("x", 300), nil}, {opText, big, nil}}, closed: "websocket: close 1005 (no status)",
			reply: []sent{{opClose, ""}}},
		{name: "fragments with a ping between", buf: 4096, limit: 1 << 20,
			in: cat(clientFrame(false, opText, []byte("ab")), clientFrame(true, opPing, []byte("p1")),
				clientFrame(false, opContinuation, []byte("cd")), clientFrame(true, opPong, []byte("x")),
				clientFrame(true, opContinuation, []byte("ef")), text1("next")),
			want:  []readResult{{opText, "abcdef", nil}, {opText, "next", nil}},
			reply: []sent{{opPong, "p1"}}, closed: errAbnormal.Error()},
		{name: "over the limit, then on", buf: 4096, limit: 10,
			in: cat(text1(strings.Repeat("y", 11)), text1("0123456789"),
				clientFrame(false, opText, []byte("012345")), clientFrame(true, opContinuation, []byte("6789a")),
				clientFrame(true, opBinary, []byte(big)), text1("ok")),
			want: []readResult{{opText, "", errTooBig}, {opText, "0123456789", nil}, {opText, "", errTooBig},
				{opBinary, "", errTooBig}, {opText, "ok", nil}}, closed: errAbnormal.Error()},
		{name: "unmasked", buf: 4096, limit: 100, in: []byte{finBit | opText, 1, 'a'},
			closed: "websocket: bad MASK", reply: []sent{{opClose, "\x03\xeabad MASK"}}},
		{name: "reserved bits", buf: 4096, limit: 100, in: func() []byte { f := text1("a"); f[0] |= 0x40; return f }(),
			closed: "websocket: RSV1 set", reply: []sent{{opClose, "\x03\xeaRSV1 set"}}},
		{name: "unknown opcode", buf: 4096, limit: 100, in: clientFrame(true, 3, nil),
			closed: "websocket: bad opcode 3", reply: []sent{{opClose, "\x03\xeabad opcode 3"}}},
		{name: "fragmented ping", buf: 4096, limit: 100, in: clientFrame(false, opPing, nil),
			closed: "websocket: FIN not set on control", reply: []sent{{opClose, "\x03\xeaFIN not set on control"}}},
		{name: "long ping", buf: 4096, limit: 100, in: []byte{finBit | opPing, maskBit | 126, 0, 126, 0, 0, 0, 0},
			closed: "websocket: len > 125 for control", reply: []sent{{opClose, "\x03\xealen > 125 for control"}}},
		{name: "continuation first", buf: 4096, limit: 100, in: clientFrame(true, opContinuation, []byte("a")),
			closed: "websocket: continuation after FIN", reply: []sent{{opClose, "\x03\xeacontinuation after FIN"}}},
		{name: "new message inside one", buf: 4096, limit: 100, in: cat(clientFrame(false, opText, []byte("a")), text1("b")),
			closed: "websocket: data before FIN", reply: []sent{{opClose, "\x03\xeadata before FIN"}}},
		{name: "close code not for the wire", buf: 4096, limit: 100, in: clientFrame(true, opClose, closePayload(1005, "")),
			closed: "websocket: bad close code 1005", reply: []sent{{opClose, "\x03\xeabad close code 1005"}}},
		{name: "close reason not UTF-8", buf: 4096, limit: 100, in: clientFrame(true, opClose, closePayload(1000, "\xff")),
			closed: "websocket: invalid utf8 payload in close frame", reply: []sent{{opClose, "\x03\xeainvalid utf8 payload in close frame"}}},
		{name: "application close code", buf: 4096, limit: 100, in: clientFrame(true, opClose, closePayload(4000, "app")),
			closed: "websocket: close 4000: app", reply: []sent{{opClose, "\x0f\xa0"}}},
		{name: "cut inside a frame", buf: 4096, limit: 100, in: text1("abcdef")[:5], closed: errAbnormal.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, frames := pipeConn(t, tc.buf, tc.in)
			done := make(chan []readResult, 1)
			go func() { done <- readAll(c, tc.limit) }()
			var got []readResult
			select {
			case got = <-done:
			case <-time.After(5 * time.Second):
				c.nc.Close()
				t.Fatal("reader did not finish")
			}
			if last := got[len(got)-1]; last.err == nil || last.err.Error() != tc.closed {
				t.Errorf("stream ended with %v, want %q", last.err, tc.closed)
			}
			got = got[:len(got)-1]
			if len(got) != len(tc.want) {
				t.Fatalf("read %d messages %v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("message %d: op %d %d bytes err %v, want op %d %d bytes err %v", i,
						got[i].op, len(got[i].data), got[i].err, tc.want[i].op, len(tc.want[i].data), tc.want[i].err)
				}
			}
			c.nc.Close()
			var reply []sent
			for _, f := range <-frames {
				reply = append(reply, sent{f.op, string(f.payload)})
			}
			if len(reply) != len(tc.reply) {
				t.Fatalf("server sent %q, want %q", reply, tc.reply)
			}
			for i := range reply {
				if reply[i] != tc.reply[i] {
					t.Errorf("server frame %d: %q, want %q", i, reply[i], tc.reply[i])
				}
			}
		})
	}
}

// TestTooBigEarly: a message over the limit is reported as soon as its header says so, before
// the rest of it arrives, so the stream can close at once.
func TestTooBigEarly(t *testing.T) {
	frame := text1(strings.Repeat("z", 1<<20))
	c, frames := pipeConn(t, 4096, frame[:200]) // the header and a little of the payload only
	done := make(chan error, 1)
	go func() {
		_, _, err := c.next(64 << 10)
		done <- err
	}()
	select {
	case err := <-done:
		if err != errTooBig {
			t.Errorf("next: %v, want errTooBig", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the oversized message was not reported before its end arrived")
	}
	if _, _, err := c.next(64 << 10); err != errAbnormal {
		t.Errorf("then: %v, want the connection's end", err)
	}
	c.nc.Close()
	<-frames
}

// TestFrameWrite: each message goes out as one final, unmasked frame with the shortest length
// encoding; after a close frame nothing more is sent.
func TestFrameWrite(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	frames := make(chan []serverFrame, 1)
	go func() { frames <- readServerFrames(client) }()
	c := &wsConn{nc: server}
	sizes := []int{0, 1, 125, 126, 0xffff, 0x10000, 100000}
	deadline := time.Now().Add(5 * time.Second)
	for _, n := range sizes {
		buf := make([]byte, maxHeader, maxHeader+n)
		for i := range n {
			buf = append(buf, byte('a'+i%26))
		}
		if err := c.writeText(buf, deadline); err != nil {
			t.Fatalf("write %d bytes: %v", n, err)
		}
	}
	if err := c.writeClose(websocket.CloseNormalClosure, "done", deadline); err != nil {
		t.Fatal(err)
	}
	if err := c.writeText(make([]byte, maxHeader+1), deadline); !errors.Is(err, websocket.ErrCloseSent) {
		t.Errorf("write after close: %v, want ErrCloseSent", err)
	}
	if err := c.writeClose(websocket.CloseNormalClosure, "", deadline); !errors.Is(err, websocket.ErrCloseSent) {
		t.Errorf("second close: %v, want ErrCloseSent", err)
	}
	server.Close()
	got := <-frames
	if len(got) != len(sizes)+1 {
		t.Fatalf("%d frames, want %d", len(got), len(sizes)+1)
	}
	for i, n := range sizes {
		if got[i].op != opText || len(got[i].payload) != n || (n > 0 && got[i].payload[n-1] != byte('a'+(n-1)%26)) {
			t.Errorf("frame %d: op %d, %d bytes; want text of %d", i, got[i].op, len(got[i].payload), n)
		}
	}
	if last := got[len(sizes)]; last.op != opClose || string(last.payload) != "\x03\xe8done" {
		t.Errorf("close frame %q", last.payload)
	}
}

// TestUnmask: the word-at-a-time XOR agrees with the byte-at-a-time definition.
func TestUnmask(t *testing.T) {
	key := [4]byte{0xde, 0xad, 0xbe, 0xef}
	for n := range 40 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		want := bytes.Clone(b)
		for i := range want {
			want[i] ^= key[i%4]
		}
		unmask(key, b)
		if !bytes.Equal(b, want) {
			t.Errorf("%d bytes: % x, want % x", n, b, want)
		}
	}
}

// TestDecodeBase64Strict: DecodeBase64 accepts exactly what base64.StdEncoding.Strict()
// accepts from text without line breaks, and decodes it the same.
func TestDecodeBase64Strict(t *testing.T) {
	inputs := []string{"AAAA", "/w==", "//8=", "////", "/x==", "//9=", "A===", "====", "AB=C", "ab==cdef", "abc=defg",
		"AAAA\nAA", "AA\rA", "Zm9vYmFy", "Zm9vYg==", "Zm9vYmE=", "-_-_", "YWJj ZA==", "YW\x00j"}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
	for range 20000 {
		n := 4 * (1 + r.IntN(6))
		b := make([]byte, n)
		for i := range b {
			if r.IntN(50) == 0 {
				b[i] = byte(r.IntN(256))
			} else {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
		}
		inputs = append(inputs, string(b))
	}
	for i := range 300 { // valid encodings of every length
		src := make([]byte, i)
		for j := range src {
			src[j] = byte(r.IntN(256))
		}
		inputs = append(inputs, base64.StdEncoding.EncodeToString(src))
	}
	for _, in := range inputs {
		checkBase64(t, in)
	}
}

func checkBase64(t *testing.T, in string) {
	t.Helper()
	var buf []byte
	got, err := DecodeBase64(&buf, []byte(in), "p")
	want, werr := base64.StdEncoding.Strict().DecodeString(in)
	if strings.ContainsAny(in, "\r\n") || len(in) == 0 || len(in)%4 != 0 {
		werr = errors.New("refused before decoding")
	}
	if (err == nil) != (werr == nil) || (err == nil && !bytes.Equal(got, want)) {
		t.Errorf("%q: got % x, %v; encoding/base64 % x, %v", in, got, err, want, werr)
	}
}

func FuzzDecodeBase64(f *testing.F) {
	for _, s := range []string{"AAAA", "/w==", "//8=", "A===", "AB=C", "Zm9v\nYmFy"} {
		f.Add(s)
	}
	f.Fuzz(checkBase64)
}

// FuzzFrames: whatever a client sends, the reader neither panics nor returns a message over
// the limit, and ends.
func FuzzFrames(f *testing.F) {
	f.Add(text1(`{"event":"media"}`), uint16(64))
	f.Add(bytes.Join([][]byte{clientFrame(false, opText, []byte("ab")), clientFrame(true, opPing, nil),
		clientFrame(true, opContinuation, []byte("cd"))}, nil), uint16(16))
	f.Add(clientFrame(true, opClose, closePayload(1000, "x")), uint16(4096))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		c, frames := pipeConn(t, 64, in)
		for _, r := range readAll(c, int64(limit)) {
			if int64(len(r.data)) > int64(limit) {
				t.Fatalf("message of %d bytes over the limit %d", len(r.data), limit)
			}
		}
		c.nc.Close()
		<-frames
	})
}

// BenchmarkReadFrame measures reading one inbound Twilio media message (about 330 bytes) from
// the connection's buffer: header, unmasking in place, no copy.
func BenchmarkReadFrame(b *testing.B) {
	msg := []byte(`{"event":"media","sequenceNumber":"2","streamSid":"MZ1","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"` +
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 160)) + `"}}`)
	frame := text1(string(msg))
	src := &repeatReader{data: frame}
	c := &wsConn{src: src, buf: make([]byte, 4096)}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, data, err := c.next(1 << 16); err != nil || len(data) != len(msg) {
			b.Fatal(err, len(data))
		}
	}
}

// repeatReader reads the same bytes over and over.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

// tcpPair returns both ends of a loopback TCP connection, closed when the test ends.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}
