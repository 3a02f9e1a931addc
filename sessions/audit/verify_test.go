package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chainOf encodes records as a chain from Genesis, without the Log's dedup: for fixtures.
func chainOf(recs ...Record) []byte {
	var b bytes.Buffer
	prev := Genesis
	for _, r := range recs {
		if r.Channel == "" {
			r.Channel = "ivr"
		}
		canon, err := json.Marshal(r.wire())
		if err != nil {
			panic(err)
		}
		h := chainHash(prev, canon)
		writeLine(&b, canon, prev, h)
		prev = h
	}
	return b.Bytes()
}

func fiveLines() [][]byte {
	var recs []Record
	for i := range 5 {
		r := good(fmt.Sprintf("req_v%d", i))
		r.Received = t0.Add(time.Duration(i) * time.Hour)
		r.Responded = r.Received.Add(time.Minute)
		recs = append(recs, r)
	}
	return bytes.SplitAfter(chainOf(recs...), []byte("\n"))[:5]
}

// rehash recomputes a line's hash after an edit, as a careful forger would.
func rehash(line []byte) []byte {
	var l lineJSON
	if err := json.Unmarshal(bytes.TrimSuffix(line, []byte("\n")), &l); err != nil {
		panic(err)
	}
	rec, _ := l.recordJSON.record()
	canon, _ := json.Marshal(rec.wire())
	var b bytes.Buffer
	writeLine(&b, canon, l.Prev, chainHash(l.Prev, canon))
	return b.Bytes()
}

func TestVerifyFindsTheFirstBadLine(t *testing.T) {
	edit := func(f func(lines [][]byte) [][]byte) []byte {
		lines := fiveLines()
		for i := range lines {
			lines[i] = bytes.Clone(lines[i])
		}
		return bytes.Join(f(lines), nil)
	}
	replace := func(i int, old, new string) func([][]byte) [][]byte {
		return func(l [][]byte) [][]byte {
			if !bytes.Contains(l[i], []byte(old)) {
				panic("no " + old)
			}
			l[i] = bytes.Replace(l[i], []byte(old), []byte(new), 1)
			return l
		}
	}
	for _, tc := range []struct {
		name string
		file []byte
		n    int // records verified before the bad line
		line int
		err  error
	}{
		{"valid", edit(func(l [][]byte) [][]byte { return l }), 5, 0, nil},
		{"empty", nil, 0, 0, nil},
		{"level raised", edit(replace(2, `"reasonable"`, `"reasonably-high"`)), 2, 3, ErrTampered},
		{"factor result changed", edit(replace(1, `"result":"passed"`, `"result":"failed"`)), 1, 2, ErrTampered},
		{"time changed", edit(replace(3, `T12:30:00Z`, `T12:31:00Z`)), 3, 4, ErrTampered},
		{"edited and rehashed", edit(func(l [][]byte) [][]byte {
			l[2] = rehash(bytes.Replace(l[2], []byte(`"reasonable"`), []byte(`"reasonably-high"`), 1))
			return l
		}), 3, 4, ErrBrokenLink},
		{"line deleted", edit(func(l [][]byte) [][]byte { return append(l[:1], l[2:]...) }), 1, 2, ErrBrokenLink},
		{"lines swapped", edit(func(l [][]byte) [][]byte { l[1], l[2] = l[2], l[1]; return l }), 1, 2, ErrBrokenLink},
		{"first line deleted", edit(func(l [][]byte) [][]byte { return l[1:] }), 0, 1, ErrBrokenLink},
		{"line duplicated", edit(func(l [][]byte) [][]byte { return append(l[:2], l[1:]...) }), 2, 3, ErrBrokenLink},
		{"not json", edit(replace(4, `{"v":1`, `{"v":1,,`)), 4, 5, ErrBadJSON},
		{"unknown field", edit(replace(1, `"agent":false`, `"agent":false,"ssn":"6789"`)), 1, 2, ErrBadJSON},
		{"key case", edit(replace(1, `"agent":`, `"Agent":`)), 1, 2, ErrNotCanonical},
		{"extra space", edit(replace(1, `"agent":false`, `"agent": false`)), 1, 2, ErrNotCanonical},
		{"escaped char", edit(replace(1, `"ivr"`, `"\u0069vr"`)), 1, 2, ErrNotCanonical},
		{"time zone", edit(replace(0, `"2025-03-01T09:30:00Z"`, `"2025-03-01T02:30:00-07:00"`)), 0, 1, ErrNotCanonical},
		{"duplicate key", edit(replace(1, `"agent":false`, `"agent":false,"agent":true`)), 1, 2, ErrNotCanonical},
		{"invalid record", edit(replace(1, `"outcome":"verified"`, `"outcome":"approved"`)), 1, 2, ErrInvalidRecord},
		{"version", edit(replace(1, `{"v":1`, `{"v":2`)), 1, 2, ErrBadJSON},
		{"blank line", edit(func(l [][]byte) [][]byte { return append(l[:3], append([][]byte{[]byte("\n")}, l[3:]...)...) }), 3, 4, ErrBadJSON},
		{"truncated", edit(func(l [][]byte) [][]byte { l[4] = l[4][:len(l[4])-1]; return l }), 4, 5, ErrTruncated},
		{"too long", edit(func(l [][]byte) [][]byte {
			l[1] = append(bytes.Repeat([]byte(" "), MaxLineBytes), l[1]...)
			return l
		}), 1, 2, ErrLineTooLong},
		{"checkpoint on line 2", func() []byte {
			lines := fiveLines()
			cp := Checkpoint{Pruned: 1, Through: t0, At: t0, Prev: Genesis}
			var b bytes.Buffer
			writeLine(&b, cp.canonical(), cp.Prev, chainHash(cp.Prev, cp.canonical()))
			return bytes.Join([][]byte{lines[0], b.Bytes(), lines[1]}, nil)
		}(), 1, 2, ErrMisplacedCheckpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Verify(bytes.NewReader(tc.file))
			if n != tc.n {
				t.Errorf("n = %d, want %d", n, tc.n)
			}
			if tc.err == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			var le *LineError
			if !errors.As(err, &le) || le.Line != tc.line || !errors.Is(err, tc.err) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Verify = %v, want line %d: %v", err, tc.line, tc.err)
			}
			if !strings.Contains(err.Error(), "line "+strconv.Itoa(tc.line)) {
				t.Fatalf("message %q does not name the line", err)
			}
		})
	}
}

func TestVerifyReadError(t *testing.T) {
	boom := errors.New("disk gone")
	_, err := Verify(&failingReader{data: bytes.Join(fiveLines()[:2], nil), err: boom})
	if !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify = %v, want the read error", err)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// FuzzVerify feeds arbitrary bytes to the line parser. Properties: no panic; n never exceeds
// the lines in the input; an accepted file re-verifies to the same summary, passes Open's
// byte-level check with the same head, ends in a newline, and stops verifying when a byte of
// it changes.
func FuzzVerify(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := VerifyChain(bytes.NewReader(data))
		if s.Records > bytes.Count(data, []byte("\n")) {
			t.Fatalf("%d records from %d lines", s.Records, bytes.Count(data, []byte("\n")))
		}
		var le *LineError
		if err != nil && !errors.As(err, &le) {
			t.Fatalf("error %v is not a *LineError", err)
		}
		if err != nil || len(data) == 0 {
			return
		}
		if data[len(data)-1] != '\n' {
			t.Fatal("accepted a file without a final newline")
		}
		again, err := VerifyChain(bytes.NewReader(data))
		if err != nil || again.Head != s.Head || again.Records != s.Records {
			t.Fatalf("second pass: %+v %v", again, err)
		}
		fast := newVerifier()
		fast.fast = true
		if err := fast.scan(bytes.NewReader(data), nil); err != nil || fast.expect != s.Head || fast.records != s.Records {
			t.Fatalf("Open's check disagrees with Verify: %d records, %v", fast.records, err)
		}
		i := len(data) / 2
		mutated := bytes.Clone(data)
		mutated[i] ^= 0x01
		if _, err := Verify(bytes.NewReader(mutated)); err == nil && s.Records > 0 {
			t.Fatalf("a flipped bit at %d went unnoticed", i)
		}
	})
}

// fuzzSeeds are the corpus in testdata/fuzz/FuzzVerify (regenerated by -update).
func fuzzSeeds() map[string][]byte {
	lines := fiveLines()
	valid := bytes.Join(lines, nil)
	cp := Checkpoint{Pruned: 7, Through: t0, At: t0.AddDate(2, 0, 1), Prev: hashOfLine(lines[0])}
	var cpLine bytes.Buffer
	writeLine(&cpLine, cp.canonical(), cp.Prev, chainHash(cp.Prev, cp.canonical()))
	hangup := good("req_h")
	hangup.Outcome, hangup.Responded, hangup.JTI, hangup.Level, hangup.Factors = OutcomeHangup, time.Time{}, "", "", nil
	denied := good("req_d")
	denied.Outcome, denied.DenialBasis, denied.Agent, denied.Declaration = OutcomeNotVerified, BasisNotVerifiable, true, true
	return map[string][]byte{
		"valid":        valid,
		"single":       lines[0],
		"checkpoint":   append(cpLine.Bytes(), bytes.Join(lines[1:], nil)...),
		"kinds":        chainOf(hangup, denied),
		"tampered":     bytes.Replace(valid, []byte(`"reasonable"`), []byte(`"reasonably-high"`), 1),
		"truncated":    valid[:len(valid)-7],
		"not_json":     []byte("{\"v\":1,\"id\":\n[]\n\x00\n"),
		"broken_link":  bytes.Join([][]byte{lines[0], lines[2]}, nil),
		"checkpoint_2": append(bytes.Clone(lines[0]), cpLine.Bytes()...),
	}
}

func TestFuzzSeedsOnDisk(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	seeds := fuzzSeeds()
	if *update {
		_ = os.MkdirAll(dir, 0o755)
		for name, data := range seeds {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) < len(seeds) {
		t.Fatalf("fuzz corpus %s: %d files, %v (run go test -run TestFuzzSeedsOnDisk -update)", dir, len(entries), err)
	}
}
