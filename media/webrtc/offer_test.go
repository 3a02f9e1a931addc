package webrtc

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func chromeOffer(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("testdata/chrome-offer.sdp")
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\n", "\r\n")
}

// edit returns the Chrome offer with old replaced by new.
func edit(t testing.TB, old, new string) string {
	t.Helper()
	s := chromeOffer(t)
	if !strings.Contains(s, old) {
		t.Fatalf("offer has no %q", old)
	}
	return strings.Replace(s, old, new, 1)
}

func TestCheckOffer(t *testing.T) {
	tests := []struct {
		name  string
		offer string
		want  error // nil, ErrBadOffer or ErrNoCodec
	}{
		{"chrome", chromeOffer(t), nil},
		{"static pcmu without rtpmap", edit(t, "a=rtpmap:0 PCMU/8000\r\n", ""), nil},
		{"pcma only", edit(t, "111 63 9 0 8 13 110 126", "8 126"), nil},
		{"lower-case encoding name", edit(t, "a=rtpmap:0 PCMU/8000", "a=rtpmap:0 pcmu/8000"), nil},
		{"opus only", edit(t, "111 63 9 0 8 13 110 126", "111 110"), ErrNoCodec},
		{"pcmu at 16 kHz is not G.711", strings.Replace(edit(t, "111 63 9 0 8 13 110 126", "96"), "a=rtpmap:110", "a=rtpmap:96 PCMU/16000\r\na=rtpmap:110", 1), ErrNoCodec},
		{"recvonly", edit(t, "a=sendrecv", "a=recvonly"), ErrNoCodec},
		{"sendonly", edit(t, "a=sendrecv", "a=sendonly"), ErrNoCodec},
		{"inactive", edit(t, "a=sendrecv", "a=inactive"), ErrNoCodec},
		{"rejected section", edit(t, "m=audio 9 ", "m=audio 0 "), ErrNoCodec},
		{"video only", edit(t, "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126", "m=video 9 UDP/TLS/RTP/SAVPF 96"), ErrBadOffer},
		{"garbage", "hello, world", ErrBadOffer},
		{"empty", "", ErrBadOffer},
		{"truncated", chromeOffer(t)[:40], ErrBadOffer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkOffer(tt.offer)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("checkOffer: %v, want ok", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("checkOffer: %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "PCMU/8000") {
				t.Errorf("error quotes the offer: %v", err)
			}
		})
	}
}

// FuzzCheckOffer: offers are peer input; no input may panic, and an accepted offer has audio.
func FuzzCheckOffer(f *testing.F) {
	f.Add(chromeOffer(f))
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n")
	f.Add("v=0\r\nm=audio 0 RTP/AVP 8\r\na=recvonly\r\n")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, offer string) {
		if err := checkOffer(offer); err == nil && !strings.Contains(offer, "m=audio") {
			t.Fatalf("accepted an offer with no audio section")
		}
	})
}
