package sip

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestParseIdentity(t *testing.T) {
	tests := []struct {
		in, user, verstat string
	}{
		{"<sip:+14155550100;verstat=TN-Validation-Passed@ims.example;user=phone>", "+14155550100", "TN-Validation-Passed"},
		{"<tel:+14155550100;verstat=TN-Validation-Failed>", "+14155550100", "TN-Validation-Failed"},
		{`"Ada Lopez" <sip:+14155550100@example.com;user=phone;verstat=No-TN-Validation>;tag=x`, "+14155550100", "No-TN-Validation"},
		{"<sip:+14155550100@example.com>;verstat=TN-Validation-Passed-A", "+14155550100", "TN-Validation-Passed-A"},
		{"<sip:anonymous@anonymous.invalid>", "anonymous", ""},
		{"sip:alice@example.com;tag=abc", "alice", ""},
		{"tel:+1-415-555-0100;verstat=TN-Validation-Passed", "+1-415-555-0100", "TN-Validation-Passed"},
		{`"Bob, Jr" <sip:bob@example.com>, <tel:+14155550199>`, "bob", ""},
		{"<sip:example.com>, <tel:+14155550199;verstat=TN-Validation-Passed>", "+14155550199", "TN-Validation-Passed"},
		{"<sip:%2B14155550100@example.com>", "+14155550100", ""},
		{"<sip:+14155550100;verstat=<script>@example.com>", "", ""},
		{"<sip:+14155550100;verstat=a\"b@example.com>", "+14155550100", ""},
		{"<sip:+14155550100;verstat=" + strings.Repeat("A", 100) + "@example.com>", "+14155550100", ""},
		{"<sip:" + strings.Repeat("1", 100) + "@example.com>", "", ""},
		{"<mailto:a@b>", "", ""},
		{"<sip:a b@example.com>", "", ""},
		{`"unterminated <sip:a@b>`, "", ""},
		{"<sip:a@b", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		id := parseIdentity(tt.in)
		if id.user != tt.user || id.verstat != tt.verstat {
			t.Errorf("parseIdentity(%q) = %q %q, want %q %q", tt.in, id.user, id.verstat, tt.user, tt.verstat)
		}
	}
}

func TestNormalizeNumber(t *testing.T) {
	tests := map[string]string{
		"+14155550100":      "+14155550100",
		"+1-415-555-0100":   "+14155550100",
		"+1 (415) 555.0100": "+14155550100",
		"14155550100":       "+14155550100",
		"0014155550100":     "+14155550100",
		"4155550100":        "4155550100", // national: country unknown
		"+4930123456":       "+4930123456",
		"1234":              "1234",
		"+123":              "+123",
		"anonymous":         "anonymous",
		"+1415555010012345": "+1415555010012345",
		"11155550100":       "11155550100", // NANP area codes do not start with 1
		"+04155550100":      "+04155550100",
		"":                  "",
	}
	for in, want := range tests {
		if got := normalizeNumber(in); got != want {
			t.Errorf("normalizeNumber(%q) = %q, want %q", in, got, want)
		}
	}
}

// parseRequest parses a raw SIP request for tests.
func parseRequest(t testing.TB, raw string) *sip.Request {
	t.Helper()
	m, err := sip.ParseMessage([]byte(strings.ReplaceAll(raw, "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Request)
}

func TestStartFor(t *testing.T) {
	s, err := NewServer(Config{AllowFrom: loopback, DialedMap: map[string]string{"+18005550101": "delete", "8005550102": "opt_out"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := "INVITE sip:%s@10.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK1\nFrom: <sip:%s@10.0.0.2>;tag=1\n" +
		"To: <sip:x@10.0.0.1>\nCall-ID: c1\nCSeq: 1 INVITE\nContact: <sip:a@10.0.0.2>\n%sContent-Length: 0\n\n"
	tests := []struct {
		name, ruri, from, extra   string
		wantFrom, wantTo, verstat string
		request, lang             string
	}{
		{name: "pai wins over from", ruri: "18005550101", from: "anonymous",
			extra:    "P-Asserted-Identity: <sip:+14155550100;verstat=TN-Validation-Passed@10.0.0.2;user=phone>\n",
			wantFrom: "+14155550100", wantTo: "+18005550101", verstat: "TN-Validation-Passed", request: "delete"},
		{name: "header wins over dialled map", ruri: "18005550101", from: "14155550100",
			extra:    "X-Callproof-Request: correct\nX-Callproof-Lang: es-US\n",
			wantFrom: "+14155550100", wantTo: "+18005550101", request: "correct", lang: "es-US"},
		{name: "dialled map by user part", ruri: "8005550102", from: "+14155550100",
			wantFrom: "+14155550100", wantTo: "8005550102", request: "opt_out"},
		{name: "bad header values ignored", ruri: "service", from: "+14155550100",
			extra:    "X-Callproof-Request: rm -rf\nX-Callproof-Lang: " + strings.Repeat("x", 70) + "\n",
			wantFrom: "+14155550100", wantTo: "service"},
		{name: "two PAI, the tel one has the verstat", ruri: "service", from: "x",
			extra:    "P-Asserted-Identity: <sip:+14155550100@10.0.0.2>\nP-Asserted-Identity: <tel:+14155550100;verstat=TN-Validation-Failed>\n",
			wantFrom: "+14155550100", wantTo: "service", verstat: "TN-Validation-Failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := parseRequest(t, sprintf(base, tt.ruri, tt.from, tt.extra))
			st := s.startFor(req, "c1")
			if st.From != tt.wantFrom || st.To != tt.wantTo || st.Verstat != tt.verstat ||
				st.Param("request") != tt.request || st.Param("lang") != tt.lang || st.Transport != "sip" || st.CallID != "c1" {
				t.Errorf("start = %+v", st)
			}
		})
	}
}

func sprintf(format string, a ...any) string {
	for _, v := range a {
		format = strings.Replace(format, "%s", v.(string), 1)
	}
	return format
}
