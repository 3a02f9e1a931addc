package sip

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden SDP answers in testdata")

// sdpLines joins SDP lines with CRLF.
func sdpLines(lines ...string) []byte { return []byte(strings.Join(lines, "\r\n") + "\r\n") }

// sippOffer is the offer SIPp's scenarios send.
var sippOffer = sdpLines("v=0", "o=user1 53655765 2353687637 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
	"m=audio 6000 RTP/AVP 0 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15")

func TestNegotiate(t *testing.T) {
	head := []string{"v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0"}
	offer := func(lines ...string) []byte { return sdpLines(append(append([]string{}, head...), lines...)...) }
	tests := []struct {
		name   string
		sdp    []byte
		pt     uint8
		alaw   bool
		te     int
		remote string // "" for none
		dir    direction
		index  int
		err    bool
	}{
		{name: "sipp pcmu and telephone-event", sdp: sippOffer, pt: 0, te: 101, remote: "127.0.0.1:6000"},
		{name: "pcma preferred", sdp: offer("m=audio 4000 RTP/AVP 8 0 101", "a=rtpmap:101 telephone-event/8000"),
			pt: 8, alaw: true, te: 101, remote: "192.0.2.1:4000"},
		{name: "static types without rtpmap", sdp: offer("m=audio 4000 RTP/AVP 0"), pt: 0, te: -1, remote: "192.0.2.1:4000"},
		{name: "dynamic pcmu and te 96", sdp: offer("m=audio 4000 RTP/AVP 112 96", "a=rtpmap:112 pcmu/8000", "a=rtpmap:96 telephone-event/8000"),
			pt: 112, te: 96, remote: "192.0.2.1:4000"},
		{name: "te at 48 kHz only is not ours", sdp: offer("m=audio 4000 RTP/AVP 0 110", "a=rtpmap:110 telephone-event/48000"),
			pt: 0, te: -1, remote: "192.0.2.1:4000"},
		{name: "te 8 kHz after 48 kHz", sdp: offer("m=audio 4000 RTP/AVP 0 110 101", "a=rtpmap:110 telephone-event/48000", "a=rtpmap:101 telephone-event/8000"),
			pt: 0, te: 101, remote: "192.0.2.1:4000"},
		{name: "opus first, pcmu second", sdp: offer("m=audio 4000 RTP/AVP 111 0", "a=rtpmap:111 opus/48000/2"),
			pt: 0, te: -1, remote: "192.0.2.1:4000"},
		{name: "video then audio", sdp: offer("m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000", "m=audio 4000 RTP/AVP 0"),
			pt: 0, te: -1, remote: "192.0.2.1:4000", index: 1},
		{name: "refused audio line then a good one", sdp: offer("m=audio 0 RTP/AVP 0", "m=audio 4002 RTP/AVP 8"),
			pt: 8, alaw: true, te: -1, remote: "192.0.2.1:4002", index: 1},
		{name: "media-level c= wins", sdp: offer("m=audio 4000 RTP/AVP 0", "c=IN IP4 198.51.100.7"),
			pt: 0, te: -1, remote: "198.51.100.7:4000"},
		{name: "old-style hold c=0.0.0.0", sdp: offer("m=audio 4000 RTP/AVP 0", "c=IN IP4 0.0.0.0", "a=sendonly"),
			pt: 0, te: -1, dir: dirSendOnly},
		{name: "session-level inactive", sdp: sdpLines("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
			"a=inactive", "m=audio 4000 RTP/AVP 0"), pt: 0, te: -1, remote: "192.0.2.1:4000", dir: dirInactive},
		{name: "recvonly", sdp: offer("m=audio 4000 RTP/AVP 0", "a=recvonly"), pt: 0, te: -1, remote: "192.0.2.1:4000", dir: dirRecvOnly},
		{name: "ipv6", sdp: sdpLines("v=0", "o=- 1 1 IN IP6 ::1", "s=-", "c=IN IP6 2001:db8::5", "t=0 0", "m=audio 4000 RTP/AVP 0"),
			pt: 0, te: -1, remote: "[2001:db8::5]:4000"},
		{name: "missing t= is repaired", sdp: sdpLines("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "m=audio 4000 RTP/AVP 0"),
			pt: 0, te: -1, remote: "192.0.2.1:4000"},
		{name: "g729 only", sdp: offer("m=audio 4000 RTP/AVP 18", "a=rtpmap:18 G729/8000"), err: true},
		{name: "stereo pcmu", sdp: offer("m=audio 4000 RTP/AVP 96", "a=rtpmap:96 PCMU/8000/2"), err: true},
		{name: "pcmu remapped to another codec", sdp: offer("m=audio 4000 RTP/AVP 0", "a=rtpmap:0 G722/8000"), err: true},
		{name: "srtp", sdp: offer("m=audio 4000 RTP/SAVP 0"), err: true},
		{name: "webrtc profile", sdp: offer("m=audio 9 UDP/TLS/RTP/SAVPF 0"), err: true},
		{name: "video only", sdp: offer("m=video 5000 RTP/AVP 96"), err: true},
		{name: "no media", sdp: offer(), err: true},
		{name: "no connection address", sdp: sdpLines("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", "m=audio 4000 RTP/AVP 0"), err: true},
		{name: "hostname connection address", sdp: offer("m=audio 4000 RTP/AVP 0", "c=IN IP4 media.example.com"), err: true},
		{name: "multicast", sdp: offer("m=audio 4000 RTP/AVP 0", "c=IN IP4 239.1.1.1/16"), err: true},
		{name: "address type mismatch", sdp: offer("m=audio 4000 RTP/AVP 0", "c=IN IP6 192.0.2.9"), err: true},
		{name: "garbage", sdp: []byte("hello world"), err: true},
		{name: "empty", sdp: nil, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := negotiate(tt.sdp)
			if tt.err {
				if !errors.Is(err, ErrSDP) {
					t.Fatalf("err = %v, want ErrSDP", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var remote string
			if s.remote.IsValid() {
				remote = s.remote.String()
			}
			if s.pt != tt.pt || s.alaw != tt.alaw || s.tePT != tt.te || remote != tt.remote || s.dir != tt.dir || s.index != tt.index {
				t.Errorf("got pt %d alaw %v te %d remote %q dir %v index %d", s.pt, s.alaw, s.tePT, remote, s.dir, s.index)
			}
		})
	}
}

// TestAnswerSDP checks our answers against golden files and that each answer negotiates back
// to the same codec with the direction reversed (go test -run TestAnswerSDP -update rewrites).
func TestAnswerSDP(t *testing.T) {
	o := origin{id: 4242, version: 7}
	l := localMedia{ip: netip.MustParseAddr("203.0.113.10"), port: 20000}
	head := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
	cases := map[string]string{
		"answer_sipp":      string(sippOffer),
		"answer_pcma_hold": head + "m=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n",
		"answer_two_lines": head + "m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio 4000 RTP/AVP 0\r\n",
	}
	for name, offer := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := negotiate([]byte(offer))
			if err != nil {
				t.Fatal(err)
			}
			got, err := answerSDP(o, l, s)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".sdp", got)
			back, err := negotiate(got)
			if err != nil {
				t.Fatalf("our answer does not negotiate: %v", err)
			}
			if back.pt != s.pt || back.tePT != s.tePT || back.dir != s.dir.reverse() || back.index != s.index ||
				back.remote != netip.MustParseAddrPort("203.0.113.10:20000") || len(back.lines) != len(s.lines) {
				t.Errorf("answer negotiates to pt %d te %d dir %v index %d remote %v lines %d",
					back.pt, back.tePT, back.dir, back.index, back.remote, len(back.lines))
			}
		})
	}
	t.Run("offer", func(t *testing.T) {
		got, err := offerSDP(o, l)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "offer.sdp", got)
		s, err := negotiate(got)
		if err != nil || s.pt != ptPCMU || s.tePT != 101 || s.dir != dirSendRecv {
			t.Errorf("our offer negotiates to %+v, %v", s, err)
		}
	})
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestSDPBody(t *testing.T) {
	multi := "--b1\r\nContent-Type: application/isup;version=itu-t92+\r\n\r\nxx\r\n--b1\r\nContent-Type: application/sdp\r\n\r\n" +
		string(sippOffer) + "\r\n--b1--\r\n"
	tests := []struct {
		name, ct, body string
		want           bool
		err            bool
	}{
		{"sdp", "application/sdp", string(sippOffer), true, false},
		{"sdp with parameters", "Application/SDP; charset=utf-8", string(sippOffer), true, false},
		{"multipart with isup", `multipart/mixed;boundary=b1`, multi, true, false},
		{"multipart without sdp", `multipart/mixed;boundary=b1`, "--b1\r\nContent-Type: text/plain\r\n\r\nx\r\n--b1--\r\n", false, false},
		{"multipart without boundary", `multipart/mixed`, multi, false, true},
		{"other type", "text/plain", "hello", false, false},
		{"empty body", "application/sdp", "", false, false},
		{"bad content type", "application/", "x", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sdpBody(tt.ct, []byte(tt.body))
			if (err != nil) != tt.err || (got != nil) != tt.want {
				t.Fatalf("got %q, %v", got, err)
			}
			if tt.want {
				if _, err := negotiate(got); err != nil {
					t.Errorf("extracted body does not negotiate: %v", err)
				}
			}
		})
	}
}

func TestParseRtpmap(t *testing.T) {
	tests := []struct {
		in   string
		pt   int
		name string
		rate int
		ok   bool
	}{
		{"0 PCMU/8000", 0, "PCMU", 8000, true},
		{"101 telephone-event/8000", 101, "telephone-event", 8000, true},
		{"96 PCMU/8000/1", 96, "PCMU", 8000, true},
		{"96 opus/48000/2", 0, "", 0, false},
		{"128 PCMU/8000", 0, "", 0, false},
		{"x PCMU/8000", 0, "", 0, false},
		{"0 PCMU", 0, "", 0, false},
		{"0 /8000", 0, "", 0, false},
		{"0 PCMU/-1", 0, "", 0, false},
		{"", 0, "", 0, false},
	}
	for _, tt := range tests {
		pt, name, rate, ok := parseRtpmap(tt.in)
		if ok != tt.ok || (ok && (pt != tt.pt || name != tt.name || rate != tt.rate)) {
			t.Errorf("parseRtpmap(%q) = %d %q %d %v", tt.in, pt, name, rate, ok)
		}
	}
}
