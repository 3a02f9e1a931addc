package sip

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Malformed requests. sipgo answers a request that parses but lacks what a transaction needs
// (Via, CSeq, ...) with 400 itself; a datagram it cannot parse at all it drops, logging the raw
// bytes. Callproof reads each UDP datagram before sipgo does: one that does not parse is
// dropped before sipgo sees it (so nothing raw is logged) and, when its start line is a SIP
// request line and its Via and Call-ID headers can be read, answered statelessly with 400 Bad
// Request (RFC 3261 §8.2 and §16.3: a sender that gets no response retransmits). Anything else
// — binary garbage, a response, an ACK — is dropped without a word. Over TCP a message that
// does not parse breaks the stream framing; sipgo closes that connection, and only that one.

// maxEcho bounds the header values copied into a 400.
const maxEcho = 512

// badRequest builds the stateless 400 for a request that did not parse, or returns nil when
// no response is possible or wise.
func badRequest(data []byte) []byte {
	head := data
	if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
		head = data[:i]
	} else if i := bytes.Index(data, []byte("\n\n")); i >= 0 {
		head = data[:i]
	}
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	if len(lines) < 2 || len(lines) > 128 {
		return nil
	}
	method, ok := requestLine(lines[0])
	if !ok || method == "ACK" {
		return nil
	}
	var vias []string
	var from, to, callID, cseq string
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		if value == "" || len(value) > maxEcho || !printableHeader(value) {
			continue
		}
		switch name {
		case "via", "v":
			if len(vias) < 8 {
				vias = append(vias, value)
			}
		case "from", "f":
			from = value
		case "to", "t":
			to = value
		case "call-id", "i":
			callID = value
		case "cseq":
			cseq = value
		}
	}
	if len(vias) == 0 || callID == "" {
		return nil
	}
	if !validCSeq(cseq) {
		cseq = ""
	}
	// The echoed headers must parse at the peer: drop From and To if they are what broke.
	for _, withAddrs := range []bool{true, false} {
		if !withAddrs {
			from, to = "", ""
		}
		res := build400(vias, from, to, callID, cseq)
		if _, err := checkParser.ParseSIP(res); err == nil {
			return res
		}
	}
	return nil
}

// checkParser checks the 400s we build; sip.Parser is safe for concurrent use.
var checkParser = sip.NewParser()

// validCSeq checks "number SP method" (RFC 3261 §20.16).
func validCSeq(v string) bool {
	num, method, ok := strings.Cut(v, " ")
	if !ok || num == "" || len(num) > 10 || !isToken(strings.TrimSpace(method)) {
		return false
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return false
		}
	}
	return true
}

func build400(vias []string, from, to, callID, cseq string) []byte {
	var b strings.Builder
	b.WriteString("SIP/2.0 400 Bad Request\r\n")
	for _, v := range vias {
		b.WriteString("Via: " + v + "\r\n")
	}
	if from != "" {
		b.WriteString("From: " + from + "\r\n")
	}
	if to != "" {
		if !strings.Contains(strings.ToLower(to), ";tag=") {
			var t [8]byte
			_, _ = rand.Read(t[:])
			to += ";tag=" + hex.EncodeToString(t[:])
		}
		b.WriteString("To: " + to + "\r\n")
	}
	b.WriteString("Call-ID: " + callID + "\r\n")
	if cseq != "" {
		b.WriteString("CSeq: " + cseq + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}

// requestLine checks "METHOD SP Request-URI SP SIP/2.0" (RFC 3261 §7.1) and returns the method.
func requestLine(l string) (string, bool) {
	parts := strings.Split(strings.TrimSpace(l), " ")
	if len(parts) != 3 || !strings.EqualFold(parts[2], "SIP/2.0") || !isToken(parts[0]) || len(parts[0]) > 32 {
		return "", false
	}
	if !strings.Contains(parts[1], ":") || len(parts[1]) > maxEcho || !printableHeader(parts[1]) {
		return "", false
	}
	return strings.ToUpper(parts[0]), true
}

// printableHeader allows visible ASCII, spaces and tabs.
func printableHeader(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c > 0x7e {
			return false
		}
	}
	return true
}
