package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// MaxLineBytes bounds one line of the file, newline included. A record is well under 4 KiB.
const MaxLineBytes = 64 << 10

// Checkpoint is the first line of a pruned file (see the package doc).
type Checkpoint struct {
	// Pruned counts the records removed by every prune so far.
	Pruned int
	// Through is the latest received or responded time among the pruned records.
	Through time.Time
	// At is when the last prune ran.
	At time.Time
	// Prev is the hash of the last pruned record: the first kept record's prev.
	Prev string
}

type checkpointJSON struct {
	Pruned  int    `json:"pruned"`
	Through string `json:"through"`
	At      string `json:"at"`
}

type checkpointLineJSON struct {
	V          int            `json:"v"`
	Checkpoint checkpointJSON `json:"checkpoint"`
}

// lineJSON decodes both line shapes.
type lineJSON struct {
	recordJSON
	Checkpoint *checkpointJSON `json:"checkpoint"`
	Prev       string          `json:"prev"`
	Hash       string          `json:"hash"`
}

// Summary is what VerifyChain learned about a valid file.
type Summary struct {
	// Records is the number of records (the checkpoint line is not one).
	Records int
	// Lines is the number of lines.
	Lines int
	// Head is the hash the next record must link to: the last record's hash, the
	// checkpoint's prev when no record follows it, or Genesis for an empty file. Keep it
	// somewhere else to detect a later rewrite of the whole file.
	Head string
	// Checkpoint is the first line of a pruned file, nil otherwise.
	Checkpoint *Checkpoint
}

// Verify reads an audit file and checks every line: JSON shape, canonical form, each record's
// fields, each hash and each link. It returns the number of records verified; on the first bad
// line it stops and returns a *LineError naming it (errors from r are returned as they are).
// A checkpoint as line 1 is accepted: the chain then starts at its prev.
func Verify(r io.Reader) (n int, err error) {
	s, err := VerifyChain(r)
	return s.Records, err
}

// VerifyChain is Verify returning what it learned. On error, the Summary covers the lines
// before the bad one.
func VerifyChain(r io.Reader) (Summary, error) {
	v := newVerifier()
	err := v.scan(r, nil)
	return v.summary(), err
}

// lineInfo describes a verified line for scan's callback.
type lineInfo struct {
	rec        *Record     // nil for the checkpoint, and in fast mode
	id         string      // the record's id (both modes)
	checkpoint *Checkpoint // nil for a record
	start, end int64       // byte offsets, end after the newline
	hash       string
}

type verifier struct {
	// fast checks each record's hash and link from its bytes, without decoding it: every
	// byte of a line is still covered (an edit breaks the hash or the link), but a line
	// written non-canonical with a matching hash passes. Open uses it; Verify, Report and
	// Prune do not.
	fast    bool
	lines   int
	records int
	offset  int64  // start of the next line
	expect  string // prev the next record must carry
	cp      *Checkpoint
	dec     lineJSON
	buf     bytes.Buffer
}

func newVerifier() *verifier { return &verifier{expect: Genesis} }

func (v *verifier) summary() Summary {
	return Summary{Records: v.records, Lines: v.lines, Head: v.expect, Checkpoint: v.cp}
}

// scan reads r line by line; fn, if set, sees each verified line. It stops at the first bad
// line with a *LineError, at fn's first error, or at a read error.
func (v *verifier) scan(r io.Reader, fn func(lineInfo) error) error {
	br := bufio.NewReaderSize(r, MaxLineBytes)
	for {
		start := v.offset
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			// Skip the rest of the line to tell an overlong line from a cut-off tail.
			n := int64(len(line))
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				n += int64(len(line))
			}
			if errors.Is(err, io.EOF) {
				return &LineError{Line: v.lines + 1, Offset: start, Err: ErrTruncated}
			}
			if err != nil {
				return err
			}
			return &LineError{Line: v.lines + 1, Offset: start, Err: ErrLineTooLong}
		case errors.Is(err, io.EOF):
			if len(line) == 0 {
				return nil
			}
			return &LineError{Line: v.lines + 1, Offset: start, Err: ErrTruncated}
		default:
			return err
		}
		info, lerr := v.check(line[:len(line)-1])
		if lerr != nil {
			return &LineError{Line: v.lines + 1, Offset: start, Err: lerr}
		}
		v.lines++
		v.offset += int64(len(line))
		if fn != nil {
			info.start, info.end = start, v.offset
			if err := fn(info); err != nil {
				return err
			}
		}
	}
}

// check verifies one line (without its newline) and advances the chain.
func (v *verifier) check(line []byte) (lineInfo, error) {
	if v.fast && !bytes.HasPrefix(line, checkpointPrefix) {
		return v.checkFast(line)
	}
	v.dec = lineJSON{}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v.dec); err != nil {
		return lineInfo{}, fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	if dec.More() {
		return lineInfo{}, fmt.Errorf("%w: more than one value", ErrBadJSON)
	}
	if v.dec.Checkpoint != nil {
		return v.checkCheckpoint(line)
	}
	rec, err := v.dec.recordJSON.record()
	if err != nil {
		return lineInfo{}, err
	}
	if err := rec.Validate(); err != nil {
		return lineInfo{}, err
	}
	canon, err := json.Marshal(rec.wire())
	if err != nil {
		return lineInfo{}, fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	if !bytes.Equal(line, v.appendLine(canon, v.dec.Prev, v.dec.Hash)) {
		return lineInfo{}, ErrNotCanonical
	}
	h := chainHash(v.dec.Prev, canon)
	if h != v.dec.Hash {
		return lineInfo{}, ErrTampered
	}
	if v.dec.Prev != v.expect {
		return lineInfo{}, ErrBrokenLink
	}
	v.expect = h
	v.records++
	return lineInfo{rec: &rec, id: rec.ID, hash: h}, nil
}

var (
	checkpointPrefix = []byte(`{"v":1,"checkpoint":`)
	idPrefix         = []byte(`{"v":1,"id":"`)
)

// suffixLen is the length of `,"prev":"<64 hex>","hash":"<64 hex>"}`, which ends every line.
const suffixLen = len(`,"prev":"`) + 64 + len(`","hash":"`) + 64 + len(`"}`)

// checkFast verifies a record line's hash and link from its bytes alone.
func (v *verifier) checkFast(line []byte) (lineInfo, error) {
	n := len(line)
	if n < suffixLen+2 {
		return lineInfo{}, ErrBadJSON
	}
	suf := line[n-suffixLen:]
	if !bytes.HasPrefix(suf, []byte(`,"prev":"`)) || string(suf[73:83]) != `","hash":"` || !bytes.HasSuffix(suf, []byte(`"}`)) {
		return lineInfo{}, ErrNotCanonical
	}
	prev, hash := string(suf[9:73]), string(suf[83:147])
	v.buf.Reset()
	v.buf.Write(line[:n-suffixLen])
	v.buf.WriteByte('}')
	h := chainHash(prev, v.buf.Bytes())
	if h != hash {
		return lineInfo{}, ErrTampered
	}
	if prev != v.expect {
		return lineInfo{}, ErrBrokenLink
	}
	v.expect = h
	v.records++
	var id string
	if rest, ok := bytes.CutPrefix(line, idPrefix); ok {
		if i := bytes.IndexByte(rest, '"'); i > 0 {
			id = string(rest[:i])
		}
	}
	return lineInfo{id: id, hash: h}, nil
}

func (v *verifier) checkCheckpoint(line []byte) (lineInfo, error) {
	if v.lines != 0 {
		return lineInfo{}, ErrMisplacedCheckpoint
	}
	if v.dec.V != formatVersion {
		return lineInfo{}, fmt.Errorf("%w: version %d", ErrBadJSON, v.dec.V)
	}
	c := v.dec.Checkpoint
	through, err1 := parseTime(c.Through)
	at, err2 := parseTime(c.At)
	if err1 != nil || err2 != nil || c.Pruned < 1 || !isHash(v.dec.Prev) {
		return lineInfo{}, fmt.Errorf("%w: checkpoint fields", ErrBadJSON)
	}
	cp := Checkpoint{Pruned: c.Pruned, Through: through, At: at, Prev: v.dec.Prev}
	canon := cp.canonical()
	if !bytes.Equal(line, v.appendLine(canon, v.dec.Prev, v.dec.Hash)) {
		return lineInfo{}, ErrNotCanonical
	}
	h := chainHash(cp.Prev, canon)
	if h != v.dec.Hash {
		return lineInfo{}, ErrTampered
	}
	v.cp = &cp
	v.expect = cp.Prev
	return lineInfo{checkpoint: &cp, hash: h}, nil
}

// appendLine builds the line for canon (without the newline) in v's buffer.
func (v *verifier) appendLine(canon []byte, prev, hash string) []byte {
	v.buf.Reset()
	writeLine(&v.buf, canon, prev, hash)
	b := v.buf.Bytes()
	return b[:len(b)-1]
}

func (c Checkpoint) canonical() []byte {
	b, _ := json.Marshal(checkpointLineJSON{V: formatVersion, Checkpoint: checkpointJSON{
		Pruned: c.Pruned, Through: formatTime(c.Through), At: formatTime(c.At)}})
	return b
}

// chainHash is hex SHA-256 of prev's 64 hex characters followed by the canonical JSON.
func chainHash(prev string, canon []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(canon)
	return hex.EncodeToString(h.Sum(nil))
}

// writeLine writes canon with prev and hash added as its last members, and a newline.
func writeLine(b *bytes.Buffer, canon []byte, prev, hash string) {
	b.Write(canon[:len(canon)-1])
	b.WriteString(`,"prev":"`)
	b.WriteString(prev)
	b.WriteString(`","hash":"`)
	b.WriteString(hash)
	b.WriteString("\"}\n")
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
