package sip

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestBadRequest(t *testing.T) {
	good := "OPTIONS sip:svc@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n" +
		"From: <sip:a@b>;tag=1\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: abc\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: many\r\nContent-Length: 0\r\n\r\n"
	tests := []struct {
		name, in string
		answer   bool
	}{
		{"bad max-forwards", good, true},
		{"compact headers, LF only", "INVITE sip:svc@h SIP/2.0\nv: SIP/2.0/UDP h;branch=z9hG4bK2\ni: xyz\nf: <sip:a@b>;tag=2\nt: <sip:svc@h>;tag=9\nCSeq: x INVITE\n\n", true},
		{"no via", strings.Replace(good, "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n", "", 1), false},
		{"no call-id", strings.Replace(good, "Call-ID: abc\r\n", "", 1), false},
		{"ack", strings.Replace(good, "OPTIONS sip:svc@127.0.0.1 SIP/2.0", "ACK sip:svc@127.0.0.1 SIP/2.0", 1), false},
		{"response", "SIP/2.0 200 OK\r\nVia: x\r\nCall-ID: y\r\n\r\n", false},
		{"not sip", "GET / HTTP/1.1\r\nVia: x\r\nCall-ID: y\r\n\r\n", false},
		{"binary", "\x80\x00\x01\x02", false},
		{"one line", "OPTIONS sip:a@b SIP/2.0", false},
		{"control characters dropped", strings.Replace(good, "Call-ID: abc", "Call-ID: a\x01bc", 1), false},
	}
	p := sip.NewParser()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := badRequest([]byte(tt.in))
			if (res != nil) != tt.answer {
				t.Fatalf("answer = %q", res)
			}
			if res == nil {
				return
			}
			m, err := p.ParseSIP(res)
			if err != nil {
				t.Fatalf("our 400 does not parse: %v\n%s", err, res)
			}
			r, ok := m.(*sip.Response)
			if !ok || r.StatusCode != 400 || r.CallID() == nil || r.Via() == nil {
				t.Fatalf("bad 400: %s", res)
			}
			if to := r.To(); to != nil && !to.Params.Has("tag") {
				t.Errorf("To without tag: %s", res)
			}
		})
	}
}

func TestParseSipfrag(t *testing.T) {
	tests := map[string]int{
		"SIP/2.0 200 OK\r\n":                 200,
		"SIP/2.0 100 Trying":                 100,
		"sip/2.0 603 Declined\r\nVia: x\r\n": 603,
		"SIP/2.0 20 OK":                      0,
		"SIP/2.0 999 Nope":                   0,
		"HTTP/1.1 200 OK":                    0,
		"":                                   0,
	}
	for in, want := range tests {
		if got := parseSipfrag([]byte(in)); got != want {
			t.Errorf("parseSipfrag(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestEscapeURIHeader(t *testing.T) {
	tests := map[string]string{
		"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.sig-_": "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.sig-_",
		"a b&c=d?<>%\"": "a%20b%26c%3Dd%3F%3C%3E%25%22",
	}
	for in, want := range tests {
		if got := escapeURIHeader(in); got != want {
			t.Errorf("escapeURIHeader(%q) = %q, want %q", in, got, want)
		}
	}
}
