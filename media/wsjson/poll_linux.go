//go:build linux

package wsjson

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/callproof/callproof/media"
)

// The poller. A platform sends each call's audio as fifty small messages a second. Read by a
// goroutine per call through Go's network poller, every message costs a goroutine wake-up, a
// read that returns it and a read that finds the socket empty, and the scheduler's and the
// kernel's work around them cost more than parsing the message and searching it for tones.
// Here a few pollers (at most one per CPU) each keep an epoll set of their streams' sockets.
// Every round (2 to 5 ms, see roundInterval) a poller takes the sockets that have data, reads
// each once (edge-triggered: a socket a read may not have emptied is read again next round)
// and hands every whole message to its stream on the poller's goroutine: the dialect's
// handler and the tone detector, which never block. One wake-up serves every frame that
// arrived meanwhile; a frame waits at most one round longer than it would have.
//
// The stream's writer writes to the socket itself, outside Go's poller (a socket in two epoll
// sets would wake Go's on every frame): a write the socket cannot take at once is retried
// after a pause, which happens only when the peer stops reading.

// minRound and maxRound bound how long a poller lets frames gather after a round of reads;
// roundFrames is how many frames it aims to find in a round (see roundInterval).
const (
	minRound    = 2 * time.Millisecond
	maxRound    = 5 * time.Millisecond
	roundFrames = 40
)

// roundInterval is the pause after a round for a poller with live streams: long enough that
// a round finds about roundFrames frames (each stream sends one every 20 ms), within
// [minRound, maxRound]. A wake-up costs the same whatever it finds, so with few streams
// longer rounds save CPU (200 calls: 0.54 ms per call-second at 2 ms rounds, 0.47 at 5 ms);
// with many, a long round leaves more frames and woken flows waiting behind each other
// (5 ms rounds made 2,000-call runs hundreds of milliseconds late).
func roundInterval(live int) time.Duration {
	if live <= 0 {
		return maxRound
	}
	return min(max(media.FrameDuration*roundFrames/time.Duration(live), minRound), maxRound)
}

// writeRetry bounds the pause between tries of a write the socket could not take.
const writeRetry = 20 * time.Millisecond

// yieldEvery is how many sockets a poller reads between yields to the goroutines it woke.
const yieldEvery = 32

// pollerShare is how many connections a poller takes before the next one is used.
const pollerShare = 500

// pollBufferSize is a poller's read buffer: a round reads at most this much from one socket.
const pollBufferSize = 64 << 10

// epollET asks for edge-triggered events: a socket is reported when data arrives, not again
// at every round while it holds some. Level-triggered, epoll checked each reported socket
// once more at the next round only to find it empty (tcp_poll was 8 % of a loaded server's
// samples). A read that fills the buffer it was given may have left data behind: that
// socket is read again at the next round without an event (poller.again).
const epollET = 1 << 31

// poller is one epoll set and the goroutine serving it, running while it has connections.
type poller struct {
	epfd  int
	buf   []byte   // the read buffer lent to each stream in turn; poller goroutine only
	again []*pconn // sockets to read at the next round without an event; poller goroutine only
	next  []*pconn // the round's copy of again

	mu      sync.Mutex
	conns   []*pconn // by slot; an event carries its connection's slot and generation
	gens    []int32
	free    []int32
	live    int
	running bool
}

// pollerCount is the number of pollers: the processors the process started with, read at
// start-up because a server may run on fewer while its load is light (GOMAXPROCS changes) and
// the pollers, filled one after another, cost nothing until they have connections.
var pollerCount = runtime.GOMAXPROCS(0)

var (
	pollersOnce sync.Once
	pollers     []*poller
	pollersErr  error
)

// pollEnabled lets tests read streams with a goroutine each.
var pollEnabled = true

// newPoller creates an epoll set.
func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	return &poller{epfd: epfd, buf: make([]byte, pollBufferSize)}, nil
}

// pollerFor returns the poller for a new connection, or an error when epoll is not available.
// Connections fill one poller up to pollerShare before the next one is used, so that at low
// load one wake-up serves as many frames as it can; past that, the least loaded poller.
func pollerFor() (*poller, error) {
	pollersOnce.Do(func() {
		for range pollerCount {
			p, err := newPoller()
			if err != nil {
				pollersErr = err
				return
			}
			pollers = append(pollers, p)
		}
	})
	if pollersErr != nil {
		return nil, pollersErr
	}
	var least *poller
	leastLive := 0
	for _, p := range pollers {
		p.mu.Lock()
		live := p.live
		p.mu.Unlock()
		if live < pollerShare {
			return p, nil
		}
		if least == nil || live < leastLive {
			least, leastLive = p, live
		}
	}
	return least, nil
}

// pconn is a stream's connection once the poller reads it: the socket, duplicated from the
// net.Conn gorilla/websocket upgraded, which is closed (and so leaves Go's poller). It is the
// stream's connWriter.
type pconn struct {
	fd   int
	p    *poller
	s    *Stream
	slot int32
	gen  int32
	hup  bool // the peer's end (or an error) was reported; the poller's goroutine only

	// rmu is held by the poller while it reads and parses; removal takes it, so a stream is
	// never read after its reader ended.
	rmu     sync.Mutex
	removed bool

	// wmu is held by a write and by Close, so the descriptor is never written after it was
	// closed (and perhaps reused).
	wmu      sync.Mutex
	closing  atomic.Bool
	closeCh  chan struct{}
	deadline atomic.Int64 // write deadline, Unix nanoseconds; 0 for none
}

// usePoller moves the stream's reads to a poller when the connection is plain TCP and epoll
// is available; otherwise the stream keeps its goroutine reader. It must be called before Run.
func (s *Stream) usePoller(nc net.Conn) {
	tc, ok := nc.(*net.TCPConn)
	if !ok || !pollEnabled {
		return
	}
	p, err := pollerFor()
	if err != nil {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	fd := -1
	var derr error
	if err := rc.Control(func(sfd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, sfd, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = os.NewSyscallError("fcntl", e)
			return
		}
		fd = int(r)
	}); err != nil || derr != nil {
		return
	}
	_ = tc.Close() // the duplicate keeps the socket; Go's poller forgets it
	c := &pconn{fd: fd, p: p, s: s, closeCh: make(chan struct{})}
	s.polled = c
	s.ws.nc, s.ws.src = c, nil
	s.ws.replies = make(chan struct{}, 4)
}

// start registers the connection with its poller.
func (c *pconn) start() error {
	return c.p.add(c)
}

// add registers c and starts the poller's goroutine if it was not running.
func (p *poller) add(c *pconn) error {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		c.slot, p.free = p.free[n-1], p.free[:n-1]
	} else {
		c.slot = int32(len(p.conns))
		p.conns, p.gens = append(p.conns, nil), append(p.gens, 0)
	}
	c.gen = p.gens[c.slot]
	p.conns[c.slot] = c
	p.live++
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: c.slot, Pad: c.gen}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		p.release(c)
		c.removed = true // never read: the stream ends its reader itself
		p.mu.Unlock()
		return os.NewSyscallError("epoll_ctl", err)
	}
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		go p.run()
	}
	return nil
}

// release frees c's slot; p.mu is held.
func (p *poller) release(c *pconn) {
	p.conns[c.slot] = nil
	p.gens[c.slot]++
	p.free = append(p.free, c.slot)
	p.live--
}

// remove takes c out of the poller's set, once, and ends its stream's reader with why.
func (p *poller) remove(c *pconn, why error) {
	c.rmu.Lock()
	if c.removed {
		c.rmu.Unlock()
		return
	}
	c.removed = true
	_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, c.fd, &syscall.EpollEvent{})
	p.mu.Lock()
	p.release(c)
	p.mu.Unlock()
	c.rmu.Unlock()
	c.s.readerEnded(why)
}

// run serves the set until it is empty: every round it takes the sockets that have
// data and reads them. It never waits in a system call (every call it makes returns at once,
// and is made without telling the scheduler): a thread blocked in epoll_wait would have to be
// woken and given a processor back, and Go's network poller, were the set in it, would wake on
// every frame that arrives.
func (p *poller) run() {
	events := make([]syscall.EpollEvent, 1024)
	for {
		n, errno := epollWait(p.epfd, events)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno != 0:
			p.fail(os.NewSyscallError("epoll_pwait", errno))
			return
		case n > 0 || len(p.again) > 0:
			p.next, p.again = p.again, p.next[:0]
			p.dispatch(events[:n], p.next)
			clear(p.next)
			if n == len(events) {
				continue // more are ready
			}
		}
		p.mu.Lock()
		live := p.live
		if live == 0 {
			p.running = false
		}
		p.mu.Unlock()
		if live == 0 {
			return
		}
		time.Sleep(roundInterval(live)) // let the next frames gather
	}
}

// epollWait takes the ready events of the set without waiting.
func epollWait(epfd int, events []syscall.EpollEvent) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	return int(n), e
}

// rawRead and rawWrite are read(2) and write(2) on a non-blocking socket, which return at once.
func rawRead(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

func rawWrite(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

// fail ends every stream of the set: the poller cannot go on.
func (p *poller) fail(err error) {
	p.mu.Lock()
	conns := make([]*pconn, 0, p.live)
	for _, c := range p.conns {
		if c != nil {
			conns = append(conns, c)
		}
	}
	p.running = false
	p.mu.Unlock()
	for _, c := range conns {
		p.remove(c, err)
	}
}

// dispatch reads each ready socket, and each socket a read of the last round may have left
// data in, once, and hands its whole messages to its stream.
func (p *poller) dispatch(events []syscall.EpollEvent, again []*pconn) {
	for i := range events {
		slot, gen := events[i].Fd, events[i].Pad
		p.mu.Lock()
		var c *pconn
		if int(slot) < len(p.conns) && p.gens[slot] == gen {
			c = p.conns[slot]
		}
		p.mu.Unlock()
		if c != nil { // else removed since the event was queued
			if events[i].Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				c.hup = true
			}
			p.read(c)
		}
		if i%yieldEvery == yieldEvery-1 {
			// A message can wake the stream's flow (a digit, a mark), which then waits on this
			// goroutine's processor: let it run rather than after the whole round.
			runtime.Gosched()
		}
	}
	for _, c := range again {
		p.read(c) // a socket read through its event above finds nothing: harmless
	}
}

// read reads c once, unless it was removed, and notes it for the next round when the read
// filled its buffer, or when the peer has closed and the read has not yet reached the end:
// no event will come for an end that arrived with the data just read.
func (p *poller) read(c *pconn) {
	c.rmu.Lock()
	if c.removed {
		c.rmu.Unlock()
		return
	}
	full, why := c.s.readPolled(c.fd, p.buf)
	c.rmu.Unlock()
	switch {
	case why != nil:
		p.remove(c, why)
	case full || c.hup:
		p.again = append(p.again, c)
	}
}

// readPolled reads the socket once into buf (or the stream's own buffer while a frame is
// incomplete) and delivers every whole message. It returns whether the read filled the space
// it had (the socket may hold more), and the error that ends the reader, or nil.
func (s *Stream) readPolled(fd int, buf []byte) (full bool, _ error) {
	c := &s.ws
	if c.r == c.w {
		c.buf, c.r, c.w, c.shared = buf, 0, 0, true
	} else if c.w == len(c.buf) {
		c.makeRoom()
	}
	var n int
	var errno syscall.Errno
	for {
		n, errno = rawRead(fd, c.buf[c.w:])
		if errno != syscall.EINTR {
			break
		}
	}
	var eof error
	switch {
	case errno == syscall.EAGAIN:
		c.keepPending()
		return false, nil
	case errno != 0:
		eof = os.NewSyscallError("read", errno)
	case n > 0:
		full = n == len(c.buf)-c.w
		c.w += n
	default:
		eof = io.EOF
	}
	for {
		op, data, perr := c.parse(s.cfg.ReadLimit)
		if perr == errNeedMore {
			break
		}
		if !s.deliver(op, data, perr) {
			c.keepPending()
			return false, perr
		}
	}
	c.keepPending()
	if eof != nil {
		eof = unexpectedEOF(eof)
		s.deliver(0, nil, eof)
		return false, eof
	}
	return full, nil
}

// keepPending returns the poller's buffer: an incomplete frame moves to a buffer of the
// stream's own, kept until the frame is whole.
func (c *wsConn) keepPending() {
	r, w := c.r+c.consumed, c.w
	c.consumed = 0
	switch {
	case r == w:
		c.buf, c.r, c.w, c.shared = nil, 0, 0, false
	case c.shared:
		own := make([]byte, max(w-r, 1024))
		c.w, c.r = copy(own, c.buf[r:w]), 0
		c.buf, c.shared = own, false
	default:
		c.r = r
	}
}

// readerEnded ends the stream for why, unless it has ended, and marks its reader done.
func (s *Stream) readerEnded(why error) {
	if !s.ended.Load() {
		s.readFailed(why)
	}
	close(s.readerDone)
}

// Write writes all of b, pausing while the socket cannot take it, until the write deadline.
func (c *pconn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n, pause := 0, time.Millisecond
	for n < len(b) {
		if c.closing.Load() {
			return n, &net.OpError{Op: "write", Net: "tcp", Err: net.ErrClosed}
		}
		m, errno := rawWrite(c.fd, b[n:])
		switch {
		case errno == syscall.EINTR:
		case errno == syscall.EAGAIN:
			if err := c.wait(pause); err != nil {
				return n, &net.OpError{Op: "write", Net: "tcp", Err: err}
			}
			pause = min(2*pause, writeRetry)
		case errno != 0:
			return n, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", errno)}
		case m > 0:
			n += m
			pause = time.Millisecond
		default:
			return n, &net.OpError{Op: "write", Net: "tcp", Err: io.ErrShortWrite}
		}
	}
	return n, nil
}

// wait pauses a write for d, less if the deadline comes first or the connection closes.
func (c *pconn) wait(d time.Duration) error {
	if dl := c.deadline.Load(); dl != 0 {
		left := time.Until(time.Unix(0, dl))
		if left <= 0 {
			return os.ErrDeadlineExceeded
		}
		d = min(d, left)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-c.closeCh:
		return net.ErrClosed
	}
}

// SetWriteDeadline sets the deadline of the writes that follow; the zero time means none.
func (c *pconn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		c.deadline.Store(0)
	} else {
		c.deadline.Store(t.UnixNano())
	}
	return nil
}

// Close stops reading (the stream's reader ends if it had not), waits for a write in progress
// and closes the socket. It waits for the poller to finish with the connection, so it must not
// be called from a stream's handler (the stream's writer closes the connection).
func (c *pconn) Close() error {
	if c.closing.Swap(true) {
		return net.ErrClosed
	}
	close(c.closeCh)
	c.p.remove(c, net.ErrClosed)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := syscall.Close(c.fd); err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

var _ connWriter = (*pconn)(nil)

// rawSocket returns the descriptor of nc when it is a plain TCP connection, for writes that
// bypass Go's network poller (see Peer.sendLocked), or -1. The descriptor stays nc's: it is
// valid only until nc is closed.
func rawSocket(nc net.Conn) int {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return -1
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if rc.Control(func(sfd uintptr) { fd = int(sfd) }) != nil {
		return -1
	}
	return fd
}

// writeSome writes what the socket fd takes of b at once: n bytes, and whether the rest
// must wait.
func writeSome(fd int, b []byte) (n int, full bool, err error) {
	for n < len(b) {
		m, errno := rawWrite(fd, b[n:])
		switch {
		case errno == syscall.EINTR:
		case errno == syscall.EAGAIN:
			return n, true, nil
		case errno != 0:
			return n, false, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", errno)}
		default:
			n += m
		}
	}
	return n, false, nil
}
