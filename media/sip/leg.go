package sip

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
)

// HandoffToken is the SetHandoff key for the verification token: it is sent in the header
// named by Config.TokenHeader.
const HandoffToken = "token"

// maxMarkName bounds mark names; ours are prompt ids.
const maxMarkName = 256

// maxHandoff bounds the handoff headers a flow may attach and their values.
const (
	maxHandoff      = 8
	maxHandoffValue = 4096
)

// endKind says who ended a call, which decides the signalling that follows.
type endKind uint8

const (
	endLocal    endKind = iota + 1 // the flow hung up: REFER (with TransferURI) then BYE
	endRemote                      // the caller sent BYE (or CANCEL): nothing to send
	endTimeout                     // no RTP: BYE
	endShutdown                    // the server is stopping: BYE
	endFailed                      // the dialog never came up (no ACK, transport error): nothing to send
)

// Leg is one SIP call as a media.Leg: the dialog, its RTP stream and the flow's view of them.
// Server creates it when the caller's ACK arrives and hands it to the serve function; its
// methods are safe for concurrent use.
//
// Besides media.Leg it has SetHandoff, which the flow finds with a type assertion on
// interface{ SetHandoff(map[string]string) } (the flow does not import this package).
type Leg struct {
	s      *Server
	log    *zap.Logger
	callID string
	dlg    *sipgo.DialogServerSession
	rx     *media.Receiver
	st     *media.Start
	stream *stream

	transport string     // "UDP" or "TCP"
	local     netip.Addr // our address for this call (SDP, Contact, Via)
	contact   sip.ContactHeader
	target    sip.Uri // the caller's Contact: where in-dialog requests go
	localTag  string
	remoteTag string
	inviteSeq uint32
	authUser  string // "" when admitted by address
	began     time.Time

	ackCh    chan ackMsg   // ACKs of our 2xx responses
	notifyCh chan int      // final status of the REFER's sipfrag
	byeCh    chan struct{} // closed when the caller's BYE arrived
	byeOnce  sync.Once

	ctx    context.Context // the flow's; cancelled when the leg ends
	cancel context.CancelFunc

	mu         sync.Mutex
	sess       *session // what was negotiated last
	origin     origin
	lastAnswer []byte
	remoteSeq  uint32 // highest CSeq of the caller's in-dialog requests
	reinvite   bool   // a re-INVITE is being answered
	handoff    map[string]string
	kind       endKind
	reason     string
	transfer   int // REFER outcome: 0 none, else the final status seen (REFER or NOTIFY)
	endCh      chan struct{}

	ended   atomic.Bool
	heard   atomic.Bool // an RFC 4733 event arrived: in-band detection stops
	sipInfo atomic.Uint64
}

var _ media.Leg = (*Leg)(nil)

// ackMsg is an ACK that reached the leg.
type ackMsg struct {
	cseq        uint32
	contentType string
	body        []byte
}

// Stats are a leg's counters, for the end-of-call log line and metrics. They never include
// what the caller keyed, only how many key presses arrived.
type Stats struct {
	// FramesIn and FramesOut count G.711 packets received and sent.
	FramesIn, FramesOut uint64
	// Digits counts RFC 4733 key presses; SIPInfo counts SIP INFO key presses.
	Digits, SIPInfo uint64
	// Marks counts clips played to the end; Clears counts clips cut short or dropped by Clear.
	Marks, Clears uint64
	// Drops counts Play requests refused for backpressure, failed sends and events the flow
	// was too slow to take.
	Drops uint64
	// Late counts restarts of the send clock after it fell more than 60 ms behind.
	Late uint64
	// RTCP, Foreign and Bad count inbound datagrams ignored: RTCP on the RTP port, RTP from
	// an address other than the caller's, and packets that are not RTP. Dups counts late or
	// duplicate audio packets dropped.
	RTCP, Foreign, Bad, Dups uint64
}

// Events implements media.Leg.
func (l *Leg) Events() <-chan media.Event { return l.rx.Events() }

// Info implements media.Leg. SIP has no playback acknowledgements: marks come from the leg's
// own send clock.
func (l *Leg) Info() media.Info { return media.Info{Transport: "sip", NativeMarks: false} }

// Start returns the call's metadata, as reported in the leg's first event.
func (l *Leg) Start() *media.Start { return l.st }

// CallID is the SIP Call-ID, also Start().CallID.
func (l *Leg) CallID() string { return l.callID }

// Stats returns the leg's counters.
func (l *Leg) Stats() Stats {
	c := &l.stream.stats
	return Stats{
		FramesIn: c.framesIn.Load(), FramesOut: c.framesOut.Load(),
		Digits: c.digits.Load(), SIPInfo: l.sipInfo.Load(),
		Marks: c.marks.Load(), Clears: c.clears.Load(),
		Drops: c.drops.Load() + l.rx.Stats().Dropped, Late: c.late.Load(),
		RTCP: c.rtcp.Load(), Foreign: c.foreign.Load(), Bad: c.bad.Load(), Dups: c.dups.Load(),
	}
}

// Play implements media.Leg: the clip goes out one 20 ms frame per tick after whatever is
// queued, and mark is reported when its last frame has been sent. It returns ErrInvalidPlay
// for a nil clip or a bad mark name, media.ErrLegClosed after the leg ended and
// media.ErrBackpressure when 64 prompts are already queued. A caller who put us on hold
// hears nothing, but the clock (and the marks) run on.
func (l *Leg) Play(clip *media.Clip, mark string) error {
	if clip == nil || mark == "" || len(mark) > maxMarkName || !utf8.ValidString(mark) {
		return fmt.Errorf("%w: want a clip and a mark name of 1 to %d bytes of UTF-8", ErrInvalidPlay, maxMarkName)
	}
	if l.ended.Load() {
		return media.ErrLegClosed
	}
	return l.stream.play.push(clip, mark)
}

// Clear implements media.Leg: the clip playing stops at the next frame and every queued clip
// is dropped; their marks are reported with Played false.
func (l *Leg) Clear() error {
	if l.ended.Load() {
		return media.ErrLegClosed
	}
	return l.stream.play.clear()
}

// Hangup implements media.Leg: with Config.TransferURI set the caller is transferred there
// with REFER (RFC 3515) carrying the handoff headers, and the leg sends BYE once the transfer
// has succeeded or failed (NOTIFY, RFC 3515 §2.4.5) or TransferTimeout has passed; without
// it the leg sends BYE. It returns at once; the leg's last event is a Hangup with
// media.ErrLegClosed. Later calls do nothing.
func (l *Leg) Hangup(reason string) error {
	l.end(endLocal, media.ErrLegClosed, reason)
	return nil
}

// SetHandoff attaches headers to the REFER that ends the call (Config.TransferURI): the key
// HandoffToken ("token") is sent as Config.TokenHeader, any other key is used as the header
// name. Each header also goes into the Refer-To URI as a URI header (RFC 3261 §19.1.1), so
// the transferee copies it into its INVITE to the transfer target (§19.1.5): that is how the
// agent's platform receives the token. Call it before Hangup; a later call replaces the
// headers. Names that are not SIP tokens, names of headers the dialog owns (Via, From, To,
// Call-ID, CSeq, Contact, Refer-To, Content-*, ...), values with control characters or longer
// than 4 KiB, and keys beyond the eighth are ignored. Without TransferURI it has no effect.
// Values are never logged.
func (l *Leg) SetHandoff(headers map[string]string) {
	h := make(map[string]string, len(headers))
	for k, v := range headers {
		if k == HandoffToken {
			k = l.s.cfg.TokenHeader
		}
		if len(h) >= maxHandoff || !isToken(k) || reservedHeader(k) || v == "" || len(v) > maxHandoffValue || !printableHeader(v) {
			continue
		}
		h[k] = v
	}
	l.mu.Lock()
	l.handoff = h
	l.mu.Unlock()
}

// reservedHeader reports whether a handoff may not set header name.
func reservedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "via", "v", "from", "f", "to", "t", "call-id", "i", "cseq", "contact", "m", "max-forwards",
		"route", "record-route", "refer-to", "r", "referred-by", "b", "content-length", "l",
		"content-type", "c", "content-encoding", "e", "authorization", "proxy-authorization",
		"require", "proxy-require", "event", "o", "expires":
		return true
	}
	return false
}

// end ends the leg once: it records how, cancels the flow's context, stops playout and
// reports the hangup to the flow. The call's goroutine does the signalling that follows.
func (l *Leg) end(kind endKind, err error, reason string) bool {
	l.mu.Lock()
	if l.kind != 0 {
		l.mu.Unlock()
		return false
	}
	l.kind, l.reason = kind, reason
	l.ended.Store(true)
	l.mu.Unlock()
	l.cancel() // first, so a flow that sees the hangup finds its context done
	l.stream.ended.Store(true)
	l.stream.play.shut()
	close(l.endCh)
	l.rx.Hangup(err)
	return true
}

// endedBy returns how the leg ended (0 while it is live) and the reason recorded.
func (l *Leg) endedBy() (endKind, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.kind, l.reason
}

// gatedDetector skips in-band detection once the caller has sent RFC 4733 events: a gateway
// that sends both would otherwise report most key presses twice (reference/dtmf.md §3.4,
// point 8). Process runs on the stream's reader goroutine.
type gatedDetector struct {
	d     media.ToneDetector
	heard *atomic.Bool
}

func (g gatedDetector) Process(dst []byte, pcm []int16) []byte {
	if g.heard.Load() {
		return dst
	}
	return g.d.Process(dst, pcm)
}
