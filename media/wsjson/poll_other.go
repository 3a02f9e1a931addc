//go:build !linux

package wsjson

import "net"

// pconn is a polled connection; elsewhere than Linux every stream has its own reader
// goroutine.
type pconn struct{}

func (*pconn) start() error { return nil }

// pollEnabled is there for the tests, which run both readers.
var pollEnabled = true

// usePoller keeps the goroutine reader.
func (s *Stream) usePoller(net.Conn) {}

// rawSocket: elsewhere than Linux a peer writes through the net.Conn.
func rawSocket(net.Conn) int { return -1 }

func writeSome(int, []byte) (int, bool, error) { panic("wsjson: no raw socket") }
