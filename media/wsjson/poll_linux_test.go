package wsjson

import (
	"bytes"
	"encoding/base64"
	"net"
	"syscall"
	"testing"
)

// BenchmarkPolledRead measures what a poller spends on one inbound Twilio media message: the
// read(2) of a loopback socket holding it and its parsing into the stream's handler (a no-op
// here), without the epoll round it shares with the other ready sockets.
func BenchmarkPolledRead(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer server.Close()
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
			if err := s.readPolled(s.polled.fd, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}
