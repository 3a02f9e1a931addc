package sip

import (
	"net/url"
	"strings"
)

// Caller identity from SIP headers. The network-asserted identity is P-Asserted-Identity
// (RFC 3325 §9.1), else From (RFC 3261 §20.20). STIR/SHAKEN verification results reach us as
// the "verstat" parameter a terminating network adds to the number it verified (ATIS-1000074
// §5.3.1, after RFC 8224): a parameter of the tel URI or of the user part of a SIP URI with
// user=phone, e.g.
//
//	P-Asserted-Identity: <sip:+14155550100;verstat=TN-Validation-Passed@ims.example;user=phone>
//	P-Asserted-Identity: <tel:+14155550100;verstat=TN-Validation-Passed>
//
// Some networks put it among the URI or header parameters instead, so all three places are
// searched. These parsers read peer input: they never fail, they return "" for what they
// cannot make sense of, and they bound what they return.

// maxIdentityLen bounds the user part and verstat we keep.
const maxIdentityLen = 64

// identity is a caller identity: the user part of the URI (a number, where it is one) and the
// verstat parameter, if any.
type identity struct {
	user    string
	verstat string
	phone   bool // a tel URI or user=phone
}

// parseIdentity reads the first usable entry of a name-addr / addr-spec list (P-Asserted-
// Identity may carry a sip and a tel URI, comma separated).
func parseIdentity(v string) identity {
	for _, entry := range splitList(v) {
		if id, ok := parseAddr(entry); ok {
			return id
		}
	}
	return identity{}
}

// mergeIdentities reads header values in order of trust: the user part of the first usable
// entry, and the first verstat found in any entry.
func mergeIdentities(values ...string) identity {
	var out identity
	for _, v := range values {
		for _, entry := range splitList(v) {
			id, ok := parseAddr(entry)
			if !ok {
				continue
			}
			if out.user == "" {
				out.user, out.phone = id.user, id.phone
			}
			if out.verstat == "" {
				out.verstat = id.verstat
			}
		}
	}
	return out
}

// splitList splits a header value at commas outside quotes and angle brackets.
func splitList(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			if depth > 0 {
				depth--
			}
		case c == ',' && depth == 0:
			out = append(out, v[start:i])
			start = i + 1
		}
		if len(out) >= 8 {
			return out
		}
	}
	return append(out, v[start:])
}

// parseAddr reads one name-addr or addr-spec.
func parseAddr(s string) (identity, bool) {
	s = strings.TrimSpace(s)
	// Skip a quoted display name.
	if strings.HasPrefix(s, `"`) {
		i := 1
		for ; i < len(s); i++ {
			if s[i] == '\\' {
				i++
				continue
			}
			if s[i] == '"' {
				break
			}
		}
		if i >= len(s) {
			return identity{}, false
		}
		s = s[i+1:]
	}
	var uri, hparams string
	if lt := strings.IndexByte(s, '<'); lt >= 0 {
		gt := strings.IndexByte(s[lt:], '>')
		if gt < 0 {
			return identity{}, false
		}
		uri, hparams = s[lt+1:lt+gt], s[lt+gt+1:]
	} else {
		// addr-spec: parameters after the URI are header parameters (RFC 3261 §20.10), so
		// only a tel URI's own parameters can be read here, and only for tel.
		uri = strings.TrimSpace(s)
		if !hasScheme(uri, "tel") {
			uri, hparams, _ = strings.Cut(uri, ";")
			hparams = ";" + hparams
		}
	}
	id, ok := parseURI(strings.TrimSpace(uri))
	if !ok {
		return identity{}, false
	}
	if id.verstat == "" {
		id.verstat = paramValue(hparams, "verstat")
	}
	id.verstat = cleanVerstat(id.verstat)
	return id, true
}

func hasScheme(uri, scheme string) bool {
	return len(uri) > len(scheme) && uri[len(scheme)] == ':' && strings.EqualFold(uri[:len(scheme)], scheme)
}

// parseURI reads the user and verstat of a sip:, sips: or tel: URI.
func parseURI(uri string) (identity, bool) {
	var id identity
	switch {
	case hasScheme(uri, "tel"):
		rest := uri[4:]
		num, params, _ := strings.Cut(rest, ";")
		id.user, id.phone = num, true
		id.verstat = paramValue(";"+params, "verstat")
	case hasScheme(uri, "sip"), hasScheme(uri, "sips"):
		rest := uri[strings.IndexByte(uri, ':')+1:]
		rest, _, _ = strings.Cut(rest, "?") // URI headers
		at := strings.LastIndexByte(rest, '@')
		if at < 0 {
			return identity{}, false // no user part
		}
		userinfo, hostpart := rest[:at], rest[at+1:]
		user, uparams, _ := strings.Cut(userinfo, ";")
		user, _, _ = strings.Cut(user, ":") // a password, RFC 3261 §19.1.1 deprecated
		id.user = user
		_, params, _ := strings.Cut(hostpart, ";")
		id.verstat = paramValue(";"+uparams, "verstat")
		if id.verstat == "" {
			id.verstat = paramValue(";"+params, "verstat")
		}
		id.phone = strings.EqualFold(paramValue(";"+params, "user"), "phone")
	default:
		return identity{}, false
	}
	if u, err := url.PathUnescape(id.user); err == nil {
		id.user = u
	}
	id.user = strings.TrimSpace(id.user)
	if id.user == "" || len(id.user) > maxIdentityLen || !printable(id.user) {
		return identity{}, false
	}
	return id, true
}

// paramValue finds ;name=value in a parameter list (case-insensitive name).
func paramValue(params, name string) string {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// cleanVerstat keeps a verstat value that looks like one (ATIS: TN-Validation-Passed,
// TN-Validation-Failed, No-TN-Validation, with optional -A/-B/-C suffixes in some networks).
func cleanVerstat(v string) string {
	if v == "" || len(v) > maxIdentityLen {
		return ""
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return ""
		}
	}
	return v
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// normalizeNumber returns a caller's user part as E.164 ("+" and 8 to 15 digits) when it looks
// like a telephone number: "+" and digits (visual separators - . ( ) removed, RFC 3966 §5.1.1),
// the international prefix 00, or 11 digits starting 1 (the NANP form US trunks send). Anything
// else (a name, a short extension, a national number whose country we cannot know) is
// returned as it is.
func normalizeNumber(user string) string {
	var b strings.Builder
	plus := false
	for i := 0; i < len(user); i++ {
		c := user[i]
		switch {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '+' && i == 0:
			plus = true
		case c == '-' || c == '.' || c == '(' || c == ')' || c == ' ':
		default:
			return user
		}
	}
	d := b.String()
	switch {
	case plus:
	case strings.HasPrefix(d, "00"):
		d = d[2:]
	case len(d) == 11 && d[0] == '1' && d[1] >= '2':
	default:
		return user
	}
	if len(d) < 8 || len(d) > 15 || d[0] == '0' {
		return user
	}
	return "+" + d
}
