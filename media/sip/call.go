package sip

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
)

// Signalling of one call after the INVITE was admitted: the 2xx and its ACK, re-INVITEs,
// the transfer and the BYE.

const (
	// byeTimeout bounds our BYE's transaction.
	byeTimeout = 5 * time.Second
	// ackWait is how long a 2xx is retransmitted waiting for its ACK (64·T1, RFC 3261
	// §13.3.1.4).
	ackWait = 32 * time.Second
)

// allowed lists the methods we accept (RFC 3261 §20.5).
const allowed = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY, UPDATE"

// via is a Via header for a request we send in this dialog.
func (l *Leg) via() *sip.ViaHeader {
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: l.transport,
		Host: l.local.String(), Port: l.s.sipPort}
	v.Params.Add("branch", sip.GenerateBranchN(16))
	v.Params.Add("rport", "")
	return v
}

// newRequest starts an in-dialog request; the dialog adds From, To, Call-ID, CSeq and Route.
func (l *Leg) newRequest(method sip.RequestMethod) *sip.Request {
	req := sip.NewRequest(method, *l.target.Clone())
	req.AppendHeader(l.via())
	req.AppendHeader(l.contact.Clone())
	return req
}

// response builds a response to req with our Contact (for 2xx to INVITE) and Allow.
func (l *Leg) response(req *sip.Request, code int, reason string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	if req.IsInvite() && code >= 200 && code < 300 {
		res.AppendHeader(l.contact.Clone())
		res.AppendHeader(sip.NewHeader("Allow", allowed))
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	return res
}

// sendUntilAck sends a 2xx to an INVITE and retransmits it, T1 doubling to T2, until the ACK
// with the same CSeq arrives (RFC 3261 §13.3.1.4), the leg ends or ackWait has passed. It
// returns the ACK.
func (l *Leg) sendUntilAck(tx sip.ServerTransaction, res *sip.Response, cseq uint32) (ackMsg, error) {
	if err := tx.Respond(res); err != nil {
		return ackMsg{}, fmt.Errorf("sip: send %d: %w", res.StatusCode, err)
	}
	interval := sip.T1
	timer := time.NewTimer(interval)
	defer timer.Stop()
	deadline := time.NewTimer(ackWait)
	defer deadline.Stop()
	for {
		select {
		case a := <-l.ackCh:
			if a.cseq == cseq {
				return a, nil
			}
		case <-timer.C:
			if err := tx.Respond(res); err != nil {
				return ackMsg{}, fmt.Errorf("sip: retransmit %d: %w", res.StatusCode, err)
			}
			interval = min(2*interval, sip.T2)
			timer.Reset(interval)
		case <-deadline.C:
			return ackMsg{}, errors.New("sip: no ACK for our 2xx")
		case <-l.endCh:
			return ackMsg{}, errors.New("sip: call ended before the ACK")
		}
	}
}

// sdpFor builds our description for the current negotiation (an answer, or an offer when
// sess is nil), raising the o= version when it differs from the last one sent.
func (l *Leg) sdpFor(sess *session) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lm := localMedia{ip: l.local, port: l.stream.port()}
	build := func() ([]byte, error) {
		if sess == nil {
			return offerSDP(l.origin, lm)
		}
		return answerSDP(l.origin, lm, sess)
	}
	b, err := build()
	if err != nil {
		return nil, err
	}
	if l.lastAnswer != nil && !bytes.Equal(b, l.lastAnswer) {
		l.origin.version++
		if b, err = build(); err != nil {
			return nil, err
		}
	}
	l.lastAnswer = b
	return b, nil
}

// paramsFor turns a negotiation into the stream's parameters.
func paramsFor(s *session) *streamParams {
	return &streamParams{pt: s.pt, alaw: s.alaw, tePT: s.tePT, remote: s.remote, dir: s.dir}
}

// idleParams are the stream's parameters before an answer to our offer arrived: nothing is
// sent, nothing is expected.
func idleParams() *streamParams {
	return &streamParams{pt: ptPCMU, tePT: -1, dir: dirInactive}
}

// checkSeq enforces RFC 3261 §12.2.2: an in-dialog request whose CSeq is lower than the last
// one is answered 500.
func (l *Leg) checkSeq(req *sip.Request) bool {
	cs := req.CSeq()
	if cs == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if cs.SeqNo < l.remoteSeq {
		return false
	}
	l.remoteSeq = cs.SeqNo
	return true
}

// onReInvite answers an INVITE inside the dialog (RFC 3261 §14.2): hold and resume (a=sendonly,
// a=inactive, c=0.0.0.0), a new address or a codec change are taken; an offer without G.711 is
// refused with 488 and the call goes on as it was; a re-INVITE without an offer gets our
// current description as an offer, answered in the ACK.
func (l *Leg) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	if l.ended.Load() {
		l.respond(tx, req, sip.StatusCallTransactionDoesNotExists, "Call Does Not Exist")
		return
	}
	if !l.checkSeq(req) {
		l.respond(tx, req, sip.StatusInternalServerError, "CSeq Out Of Order")
		return
	}
	l.mu.Lock()
	busy := l.reinvite
	l.reinvite = true
	l.mu.Unlock()
	if busy {
		l.respond(tx, req, sip.StatusRequestPending, "Request Pending")
		return
	}
	defer func() {
		l.mu.Lock()
		l.reinvite = false
		l.mu.Unlock()
	}()
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	offer, err := sdpBody(ct, req.Body())
	var sess *session
	if err == nil && offer != nil {
		sess, err = negotiate(offer)
	}
	if err != nil {
		l.log.Warn("sip re-invite refused", zap.Error(err))
		res := sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil)
		res.AppendHeader(sip.NewHeader("Warning", `399 callproof "`+warningText(err)+`"`))
		_ = tx.Respond(res)
		return
	}
	body, err := l.sdpFor(sess)
	if err != nil {
		l.respond(tx, req, sip.StatusInternalServerError, "Server Internal Error")
		return
	}
	if sess != nil {
		l.mu.Lock()
		l.sess = sess
		l.mu.Unlock()
		l.stream.renegotiated(paramsFor(sess))
		l.log.Info("sip re-invite", zap.String("direction", sess.dir.String()), zap.String("codec", sess.codecName()))
	}
	ack, err := l.sendUntilAck(tx, l.response(req, sip.StatusOK, "OK", body), req.CSeq().SeqNo)
	if err != nil {
		l.log.Warn("sip re-invite not acknowledged", zap.Error(err))
		return
	}
	if sess == nil {
		l.answerInAck(ack)
	}
}

// answerInAck takes the answer to our offer from an ACK (RFC 3261 §13.2.1). It reports
// whether a usable answer was there.
func (l *Leg) answerInAck(a ackMsg) bool {
	body, err := sdpBody(a.contentType, a.body)
	if err == nil && body == nil {
		err = fmt.Errorf("%w: the ACK carried no answer", ErrSDP)
	}
	var sess *session
	if err == nil {
		sess, err = negotiate(body)
	}
	if err != nil {
		l.log.Warn("sip answer in ACK refused", zap.Error(err))
		return false
	}
	l.mu.Lock()
	l.sess = sess
	l.mu.Unlock()
	l.stream.renegotiated(paramsFor(sess))
	return true
}

func (l *Leg) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string) {
	_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
}

// callerBye is the caller's BYE, already answered 200.
func (l *Leg) callerBye() {
	l.byeOnce.Do(func() { close(l.byeCh) })
	l.end(endRemote, media.ErrHangup, "caller hung up")
}

// callerGone reports whether the caller's BYE arrived.
func (l *Leg) callerGone() bool {
	select {
	case <-l.byeCh:
		return true
	default:
		return false
	}
}

// run serves an answered call: the stream, the flow, and the signalling when it ends. It
// returns once everything the call started has finished.
func (l *Leg) run() {
	l.stream.start()
	flowDone := make(chan struct{})
	go func() {
		defer close(flowDone)
		if l.s.serve != nil {
			l.s.serve(l.ctx, l)
		}
		_ = l.Hangup("done")
	}()
	<-l.endCh
	kind, _ := l.endedBy()
	switch kind {
	case endLocal:
		if l.s.transfer != nil && !l.callerGone() {
			l.referCaller()
		}
		l.bye()
	case endTimeout, endShutdown:
		l.bye()
	}
	<-flowDone
	l.stream.close()
	l.s.forget(l)
	l.logEnd()
}

// bye ends the dialog from our side unless the caller already did.
func (l *Leg) bye() {
	if l.callerGone() {
		return
	}
	ctx, cancel := context.WithTimeout(l.s.base, byeTimeout)
	defer cancel()
	if err := l.dlg.WriteBye(ctx, l.newRequest(sip.BYE)); err != nil && !l.callerGone() {
		l.log.Warn("sip bye failed", zap.Error(err))
	}
	l.byeOnce.Do(func() { close(l.byeCh) })
}

// referCaller transfers the caller to Config.TransferURI (RFC 3515) and waits for the final
// NOTIFY, the caller's BYE or TransferTimeout.
func (l *Leg) referCaller() {
	ctx, cancel := context.WithTimeout(l.s.base, l.s.cfg.TransferTimeout)
	defer cancel()
	l.mu.Lock()
	handoff := l.handoff
	l.mu.Unlock()
	names := make([]string, 0, len(handoff))
	for k := range handoff {
		names = append(names, k)
	}
	sort.Strings(names)

	target := l.s.transfer.Clone()
	var refer strings.Builder
	refer.WriteString("<")
	target.StringWrite(&refer)
	for i, k := range names {
		if i == 0 {
			refer.WriteString("?")
		} else {
			refer.WriteString("&")
		}
		refer.WriteString(k + "=" + escapeURIHeader(handoff[k]))
	}
	refer.WriteString(">")

	req := l.newRequest(sip.REFER)
	req.AppendHeader(sip.NewHeader("Refer-To", refer.String()))
	req.AppendHeader(sip.NewHeader("Referred-By", "<"+l.contact.Address.String()+">"))
	for _, k := range names {
		req.AppendHeader(sip.NewHeader(k, handoff[k]))
	}
	res, err := l.dlg.Do(ctx, req)
	switch {
	case err != nil:
		l.log.Warn("sip transfer: REFER failed", zap.Error(err), zap.Int("handoff_headers", len(names)))
		return
	case res.StatusCode/100 != 2:
		l.setTransfer(res.StatusCode)
		l.log.Warn("sip transfer refused", zap.Int("status", res.StatusCode))
		return
	}
	select {
	case code := <-l.notifyCh:
		l.setTransfer(code)
		if code/100 != 2 {
			l.log.Warn("sip transfer failed", zap.Int("status", code))
		}
	case <-l.byeCh:
		l.setTransfer(res.StatusCode)
	case <-ctx.Done():
		l.setTransfer(res.StatusCode)
		l.log.Warn("sip transfer: no final NOTIFY", zap.Duration("waited", l.s.cfg.TransferTimeout))
	}
}

func (l *Leg) setTransfer(code int) {
	l.mu.Lock()
	l.transfer = code
	l.mu.Unlock()
}

// escapeURIHeader escapes a URI header value (RFC 3261 §25.1: hvalue = *( hnv-unreserved /
// unreserved / escaped )).
func escapeURIHeader(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			strings.IndexByte("-_.!~*'()[]/:+$", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

// parseSipfrag reads the status code of a message/sipfrag body (RFC 3420) as a REFER's NOTIFY
// carries it: "SIP/2.0 200 OK". It returns 0 when there is none.
func parseSipfrag(body []byte) int {
	line, _, _ := bytes.Cut(body, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 2 || !strings.EqualFold(f[0], "SIP/2.0") || len(f[1]) != 3 {
		return 0
	}
	code, err := strconv.Atoi(f[1])
	if err != nil || code < 100 || code > 699 {
		return 0
	}
	return code
}

// warningText is an error's text fit for a Warning header's quoted string.
func warningText(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return ' '
		}
		return r
	}, s)
}

// logEnd writes the end-of-call line: how and why, the transfer outcome and the counters.
func (l *Leg) logEnd() {
	kind, reason := l.endedBy()
	l.mu.Lock()
	transfer := l.transfer
	l.mu.Unlock()
	st := l.Stats()
	how := map[endKind]string{endLocal: "local", endRemote: "caller", endTimeout: "rtp_timeout",
		endShutdown: "shutdown", endFailed: "failed"}[kind]
	level := zap.InfoLevel
	if kind == endTimeout {
		level = zap.WarnLevel
	}
	l.log.Log(level, "sip call ended", zap.Duration("duration", time.Since(l.began)),
		zap.String("ended_by", how), zap.String("hangup_reason", reason), zap.NamedError("reason", l.rx.Err()),
		zap.Int("transfer_status", transfer),
		zap.Uint64("frames_in", st.FramesIn), zap.Uint64("frames_out", st.FramesOut),
		zap.Uint64("digits_rfc4733", st.Digits), zap.Uint64("digits_sip_info", st.SIPInfo),
		zap.Uint64("marks", st.Marks), zap.Uint64("clears", st.Clears), zap.Uint64("drops", st.Drops),
		zap.Uint64("late", st.Late), zap.Uint64("rtcp", st.RTCP), zap.Uint64("foreign", st.Foreign),
		zap.Uint64("bad", st.Bad), zap.Uint64("dups", st.Dups))
}

// newTag returns a random tag or id.
func newTag() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
