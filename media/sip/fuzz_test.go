package sip

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Fuzz targets for the peer input this package parses itself (seed corpora in
// testdata/fuzz/<target>/): session descriptions and the answers built from them, message
// bodies, caller identities, the stateless 400 for unparseable requests, sipfrag bodies and
// RTP datagrams.

func FuzzNegotiate(f *testing.F) {
	f.Add(sippOffer)
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000\r\na=inactive\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := negotiate(body)
		if err != nil {
			return
		}
		if s.index < 0 || s.index >= len(s.lines) || s.pt > 127 || s.tePT > 127 {
			t.Fatalf("bad session %+v", s)
		}
		ans, err := answerSDP(origin{id: 1, version: 1}, localMedia{ip: netip.MustParseAddr("192.0.2.9"), port: 30000}, s)
		if err != nil {
			return // pion refuses to marshal some of what it parsed (e.g. odd m= formats)
		}
		back, err := negotiate(ans)
		if err != nil {
			t.Fatalf("our answer to an accepted offer does not negotiate: %v\n%s", err, ans)
		}
		if back.pt != s.pt || back.tePT != s.tePT || back.dir != s.dir.reverse() {
			t.Fatalf("answer negotiates to %+v from %+v", back, s)
		}
	})
}

func FuzzSDPBody(f *testing.F) {
	f.Add("application/sdp", sippOffer)
	f.Add("multipart/mixed;boundary=b1", []byte("--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--b1--\r\n"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		b, err := sdpBody(ct, body)
		if err == nil && len(b) > maxSDP && !strings.HasPrefix(strings.ToLower(ct), "application/sdp") {
			t.Fatalf("multipart part of %d bytes", len(b))
		}
	})
}

func FuzzIdentity(f *testing.F) {
	f.Add("<sip:+14155550100;verstat=TN-Validation-Passed@ims.example;user=phone>")
	f.Add(`"A, B" <tel:+1-415-555-0100;verstat=No-TN-Validation>, <sip:x@y>`)
	f.Fuzz(func(t *testing.T, v string) {
		id := parseIdentity(v)
		if len(id.user) > maxIdentityLen || !printable(id.user) && id.user != "" || len(id.verstat) > maxIdentityLen {
			t.Fatalf("identity %+v", id)
		}
		if id.verstat != cleanVerstat(id.verstat) {
			t.Fatalf("verstat %q not clean", id.verstat)
		}
		if n := normalizeNumber(id.user); strings.HasPrefix(n, "+") && n != id.user && (len(n) < 9 || len(n) > 16) {
			t.Fatalf("normalizeNumber(%q) = %q", id.user, n)
		}
		_ = mergeIdentities(v, v)
	})
}

func FuzzBadRequest(f *testing.F) {
	f.Add([]byte("OPTIONS sip:svc@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: abc\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: many\r\n\r\n"))
	f.Add([]byte("INVITE sip:a@b SIP/2.0\nv: SIP/2.0/UDP h\ni: x\nCSeq: 1 INVITE\n\n"))
	p := sip.NewParser()
	f.Fuzz(func(t *testing.T, data []byte) {
		res := badRequest(data)
		if res == nil {
			return
		}
		m, err := p.ParseSIP(res)
		if err != nil {
			t.Fatalf("our 400 does not parse: %v\n%q", err, res)
		}
		if r, ok := m.(*sip.Response); !ok || r.StatusCode != 400 {
			t.Fatalf("not a 400: %q", res)
		}
		if len(res) > len(data)+256 {
			t.Fatalf("400 of %d bytes for a request of %d: an amplifier", len(res), len(data))
		}
	})
}

func FuzzSipfrag(f *testing.F) {
	f.Add([]byte("SIP/2.0 200 OK\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		if c := parseSipfrag(body); c != 0 && (c < 100 || c > 699) {
			t.Fatalf("code %d", c)
		}
	})
}

func FuzzRTPPacket(f *testing.F) {
	for _, p := range keyPress(101, 1, 1000, 5) {
		f.Add(p)
	}
	f.Add(rtpPacket(0, 1, 160, true, make([]byte, 160)))
	f.Add([]byte{0x80, 200, 0, 6})
	ts := newTestStream(f, &streamParams{pt: ptPCMU, tePT: 101, dir: dirSendRecv})
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		now = now.Add(20 * time.Millisecond)
		ts.handle(data, ts.from, now)
		ts.tick(now)
		_ = ts.digits()
	})
}
