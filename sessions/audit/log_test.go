package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func openT(t *testing.T, dir string, opts ...Option) *Log {
	t.Helper()
	l, err := Open(dir, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func appendN(t *testing.T, l *Log, from, n int, received time.Time) {
	t.Helper()
	for i := from; i < from+n; i++ {
		r := good(fmt.Sprintf("req_%04d", i))
		r.Received, r.Responded = received.Add(time.Duration(i)*time.Minute), received.Add(time.Duration(i)*time.Minute+time.Minute)
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

func verifyFile(t *testing.T, path string) (Summary, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return VerifyChain(f)
}

func TestAppendVerify(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	appendN(t, l, 0, 5, t0)
	st := l.Stats()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := verifyFile(t, filepath.Join(dir, FileName))
	if err != nil || s.Records != 5 || s.Head != st.Head {
		t.Fatalf("VerifyChain = %+v, %v; want 5 records, head %s", s, err, st.Head)
	}
	if fi, _ := os.Stat(filepath.Join(dir, FileName)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", fi.Mode().Perm())
	}
	// Reopen: the chain continues from the head.
	l2 := openT(t, dir)
	if got := l2.Stats().Head; got != st.Head {
		t.Fatalf("reopened head %s, want %s", got, st.Head)
	}
	appendN(t, l2, 5, 2, t0)
	_ = l2.Close()
	if s, err := verifyFile(t, filepath.Join(dir, FileName)); err != nil || s.Records != 7 {
		t.Fatalf("after reopen: %+v, %v", s, err)
	}
}

func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	// Slow fsync down so that appends pile up behind it, as they do on a real disk.
	l.sync = func(f *os.File) error { time.Sleep(2 * time.Millisecond); return f.Sync() }
	const n = 400
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			r := good(fmt.Sprintf("req_g%d", i))
			if err := l.Append(context.Background(), r); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Appended != n || st.Commits >= n/4 {
		t.Fatalf("stats %+v: want %d records in far fewer than %d commits", st, n, n)
	}
	t.Logf("%d appends in %d write+fsync commits", st.Appended, st.Commits)
	_ = l.Close()
	if s, err := verifyFile(t, filepath.Join(dir, FileName)); err != nil || s.Records != n {
		t.Fatalf("verify: %+v, %v", s, err)
	}
}

func TestAppendIsIdempotentByID(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	r := good("req_once")
	for range 3 {
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.AppendBatch(context.Background(), []Record{good("req_b"), good("req_b"), r}); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	// The ids are remembered across a reopen too.
	l = openT(t, dir)
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Duplicates != 1 || st.Appended != 0 {
		t.Fatalf("after reopen: %+v", st)
	}
	_ = l.Close()
	if s, err := verifyFile(t, filepath.Join(dir, FileName)); err != nil || s.Records != 2 {
		t.Fatalf("verify: %+v, %v; want 2 records", s, err)
	}
}

func TestAppendRefusesInvalid(t *testing.T) {
	l := openT(t, t.TempDir())
	r := good("req_bad")
	r.Call = "+14155550100"
	if err := l.Append(context.Background(), r); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("Append = %v, want ErrInvalidRecord", err)
	}
	if err := l.AppendBatch(context.Background(), []Record{good("req_ok"), r}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("AppendBatch = %v, want ErrInvalidRecord", err)
	}
	if st := l.Stats(); st.Appended != 0 {
		t.Fatalf("a batch with an invalid record wrote %d", st.Appended)
	}
}

func TestCloseFlushesAndRefuses(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 50 {
		wg.Go(func() {
			if err := l.Append(context.Background(), good(fmt.Sprintf("req_c%d", i))); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, ErrClosed) {
				t.Error(err)
			}
		})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := l.Append(context.Background(), good("req_late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	if _, err := l.Prune(context.Background(), time.Now()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Prune after Close = %v", err)
	}
	// Every append that succeeded is in the file, and nothing else.
	if s, err := verifyFile(t, filepath.Join(dir, FileName)); err != nil || s.Records != ok {
		t.Fatalf("verify: %+v, %v; want %d records", s, err, ok)
	}
}

func TestOpenLocks(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir)
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

func TestOpenOptions(t *testing.T) {
	for _, o := range []Option{WithMaxBatch(0), WithDedupWindow(0), WithRetention(Retention{Months: 12})} {
		if _, err := Open(t.TempDir(), o); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Open = %v, want ErrInvalidConfig", err)
		}
	}
}

func TestRecoverCutsDamagedTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		tail func(last []byte) []byte
	}{
		{"half a line", func(last []byte) []byte { return last[:len(last)/2] }},
		{"zero-filled block", func([]byte) []byte { return make([]byte, 4096) }},
		{"whole line that does not verify", func(last []byte) []byte {
			return bytes.Replace(last, []byte(`"verified"`), []byte(`"not_verified"`), 1)
		}},
		{"line longer than the limit, cut off", func([]byte) []byte { return bytes.Repeat([]byte("x"), MaxLineBytes+10) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			l := openT(t, dir)
			appendN(t, l, 0, 4, t0)
			head := l.Stats().Head
			_ = l.Close()
			data, _ := os.ReadFile(path)
			lines := bytes.SplitAfter(data, []byte("\n"))
			damaged := append(bytes.Clone(data), tc.tail(lines[1])...)
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			core, logs := observer.New(zap.InfoLevel)
			l = openT(t, dir, WithLogger(zap.New(core)))
			if got := l.Stats(); got.Head != head || got.Size != int64(len(data)) {
				t.Fatalf("after recovery: %+v, want head %s size %d", got, head, len(data))
			}
			if cut := logs.FilterMessageSnippet("cut a damaged last line").All(); len(cut) != 1 || cut[0].ContextMap()["line"] != int64(5) {
				t.Fatalf("recovery log: %v", logs.All())
			}
			appendN(t, l, 4, 2, t0)
			_ = l.Close()
			if s, err := verifyFile(t, path); err != nil || s.Records != 6 {
				t.Fatalf("verify after recovery: %+v, %v", s, err)
			}
		})
	}
}

func TestOpenRefusesDamageBeforeTheTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	l := openT(t, dir)
	appendN(t, l, 0, 4, t0)
	_ = l.Close()
	data, _ := os.ReadFile(path)
	bad := bytes.Replace(data, []byte(`"req_0001"`), []byte(`"req_0009"`), 1)
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	var le *LineError
	if !errors.As(err, &le) || le.Line != 2 || !errors.Is(err, ErrTampered) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want line 2 tampered", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, bad) {
		t.Fatal("Open changed a file it refused")
	}
	// The lock was released: a fixed file opens.
	_ = os.WriteFile(path, data, 0o600)
	openT(t, dir)
}

func TestWriteFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	appendN(t, l, 0, 1, t0)
	l.sync = func(*os.File) error { return errors.New("EIO") }
	if err := l.Append(context.Background(), good("req_x")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append with failing fsync = %v", err)
	}
	l.sync = (*os.File).Sync // the disk recovered, the log does not trust it
	if err := l.Append(context.Background(), good("req_y")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append after a failure = %v, want sticky ErrUnavailable", err)
	}
	if _, err := l.Prune(context.Background(), time.Now()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Prune after a failure = %v", err)
	}
	_ = l.Close()
	// Reopening recovers; req_x reached the file before the failed fsync and counts once.
	l = openT(t, dir)
	if err := l.Append(context.Background(), good("req_x")); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Duplicates != 1 {
		t.Fatalf("stats %+v: want req_x recognised as written", st)
	}
}

func TestAppendContext(t *testing.T) {
	l := openT(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := l.Append(ctx, good("req_ctx"))
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context = %v", err)
	}
}

func TestPrune(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	l := openT(t, dir)
	old := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	appendN(t, l, 0, 3, old)                  // 2023-01-01
	appendN(t, l, 3, 2, old.AddDate(0, 6, 0)) // 2023-07-01
	appendN(t, l, 5, 3, old.AddDate(2, 6, 0)) // 2025-07-01
	headBefore := l.Stats().Head
	before, _ := os.ReadFile(path)
	beforeLines := bytes.SplitAfter(before, []byte("\n"))

	// Nothing has expired on 2024-12-31.
	if n, err := l.Prune(context.Background(), old.AddDate(1, 11, 30)); err != nil || n != 0 {
		t.Fatalf("early Prune = %d, %v", n, err)
	}
	// On 2025-03-01 the first three (2023-01) have.
	n, err := l.Prune(context.Background(), time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || n != 3 {
		t.Fatalf("Prune = %d, %v; want 3", n, err)
	}
	after, _ := os.ReadFile(path)
	s, err := VerifyChain(bytes.NewReader(after))
	if err != nil || s.Records != 5 || s.Checkpoint == nil || s.Checkpoint.Pruned != 3 || s.Head != headBefore {
		t.Fatalf("after prune: %+v, %v", s, err)
	}
	if s.Checkpoint.Prev != hashOfLine(beforeLines[2]) {
		t.Fatal("checkpoint prev is not the last pruned record's hash")
	}
	// The kept lines are byte for byte the old ones.
	if !bytes.HasSuffix(after, bytes.Join(beforeLines[3:], nil)) {
		t.Fatal("kept lines changed")
	}
	// Appends continue the chain; a second prune accumulates the count.
	appendN(t, l, 8, 1, old.AddDate(3, 0, 0))
	if n, err := l.Prune(context.Background(), time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)); err != nil || n != 2 {
		t.Fatalf("second Prune = %d, %v", n, err)
	}
	_ = l.Close()
	s, err = verifyFile(t, path)
	if err != nil || s.Records != 4 || s.Checkpoint.Pruned != 5 || !s.Checkpoint.Through.Equal(old.AddDate(0, 6, 0).Add(5*time.Minute)) {
		t.Fatalf("after second prune: %+v, %v", s, err)
	}

	// Tampering in a pruned file is still caught: a kept record, the checkpoint's prev, its count.
	pruned, _ := os.ReadFile(path)
	for _, tc := range []struct {
		name      string
		old, new  string
		line      int
		wantError error
	}{
		{"kept record", `"req_0006"`, `"req_0096"`, 3, ErrTampered},
		{"checkpoint count", `"pruned":5`, `"pruned":1`, 1, ErrTampered},
		{"checkpoint prev", `"prev":"` + s.Checkpoint.Prev[:4], `"prev":"ffff`, 1, ErrTampered},
	} {
		bad := bytes.Replace(pruned, []byte(tc.old), []byte(tc.new), 1)
		if bytes.Equal(bad, pruned) {
			t.Fatalf("%s: replacement did not apply", tc.name)
		}
		_, err := Verify(bytes.NewReader(bad))
		var le *LineError
		if !errors.As(err, &le) || le.Line != tc.line || !errors.Is(err, tc.wantError) {
			t.Errorf("%s: Verify = %v, want line %d %v", tc.name, err, tc.line, tc.wantError)
		}
	}
	// Dropping the checkpoint line leaves a chain that no longer starts at Genesis.
	_, err = Verify(bytes.NewReader(pruned[bytes.IndexByte(pruned, '\n')+1:]))
	if le := (*LineError)(nil); !errors.As(err, &le) || le.Line != 1 || !errors.Is(err, ErrBrokenLink) {
		t.Errorf("without checkpoint: %v", err)
	}
}

func TestPruneEverything(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	appendN(t, l, 0, 2, t0)
	head := l.Stats().Head
	if n, err := l.Prune(context.Background(), t0.AddDate(5, 0, 0)); err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	appendN(t, l, 2, 1, t0.AddDate(5, 0, 0))
	_ = l.Close()
	s, err := verifyFile(t, filepath.Join(dir, FileName))
	if err != nil || s.Records != 1 || s.Checkpoint.Prev != head {
		t.Fatalf("%+v, %v", s, err)
	}
}

func TestPruneRefusesBadChain(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	l := openT(t, dir)
	appendN(t, l, 0, 3, t0)
	// Damage line 2 behind the writer's back (as an intruder would).
	data, _ := os.ReadFile(path)
	bad := bytes.Replace(data, []byte(`"req_0001"`), []byte(`"req_0007"`), 1)
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := l.Prune(context.Background(), t0.AddDate(5, 0, 0))
	if !errors.Is(err, ErrTampered) {
		t.Fatalf("Prune = %v, want refusal", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, bad) {
		t.Fatal("Prune rewrote a tampered file")
	}
}

func hashOfLine(line []byte) string {
	i := bytes.LastIndex(line, []byte(`"hash":"`))
	return string(line[i+8 : i+8+64])
}

func TestLogNeverHoldsSecrets(t *testing.T) {
	// A record has no field for answers, numbers or tokens; this checks the encoded line
	// holds nothing beyond the documented keys.
	r := good("req_keys")
	b, _ := r.MarshalJSON()
	keys := []string{"v", "id", "received", "request", "channel", "platform", "call", "locale", "outcome",
		"responded", "denial_basis", "declaration", "factors", "name", "result", "jti", "agent", "level"}
	s := string(b)
	for _, k := range keys {
		s = strings.ReplaceAll(s, `"`+k+`":`, "")
	}
	if strings.Contains(s, `":`) {
		t.Fatalf("undocumented key in %s", b)
	}
}

// BenchmarkAppendParallel measures group-committed appends from many goroutines (each append
// waits for its fsync).
func BenchmarkAppendParallel(b *testing.B) {
	l, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var n atomic.Int64
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Append(context.Background(), good(fmt.Sprintf("req_b%d", n.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(l.Stats().Appended)/float64(max(l.Stats().Commits, 1)), "records/commit")
}

// BenchmarkVerify measures verification (and so Open's recovery scan and Report) per record.
func BenchmarkVerify(b *testing.B) {
	var recs []Record
	for i := range 10000 {
		recs = append(recs, good(fmt.Sprintf("req_v%d", i)))
	}
	data := chainOf(recs...)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if n, err := Verify(bytes.NewReader(data)); err != nil || n != len(recs) {
			b.Fatal(n, err)
		}
	}
}

func TestPruneWhileAppending(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	old := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	appendN(t, l, 0, 2000, old)
	appendN(t, l, 2000, 10, old.AddDate(3, 0, 0))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				r := good(fmt.Sprintf("req_w%d_%d", g, i))
				if err := l.Append(context.Background(), r); err != nil {
					t.Error(err)
				}
			}
		})
	}
	n, err := l.Prune(context.Background(), old.AddDate(3, 0, 0))
	wg.Wait()
	if err != nil || n != 2000 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	appendN(t, l, 3000, 1, t0)
	_ = l.Close()
	if s, err := verifyFile(t, filepath.Join(dir, FileName)); err != nil || s.Records != 10+200+1 || s.Checkpoint.Pruned != 2000 {
		t.Fatalf("after prune with concurrent appends: %+v, %v", s, err)
	}
}

// BenchmarkOpenCheck measures the byte-level hash and link check Open runs over the file.
func BenchmarkOpenCheck(b *testing.B) {
	var recs []Record
	for i := range 10000 {
		recs = append(recs, good(fmt.Sprintf("req_v%d", i)))
	}
	data := chainOf(recs...)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		v := newVerifier()
		v.fast = true
		if err := v.scan(bytes.NewReader(data), nil); err != nil || v.records != len(recs) {
			b.Fatal(v.records, err)
		}
	}
}

func TestEscapedCharactersStayCanonical(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	r := good("req_esc")
	r.Call = `"a\b"<x>&y@pc33.example` // SIP Call-IDs may hold quotes and backslashes
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	if s, err := verifyFile(t, filepath.Join(dir, FileName)); err != nil || s.Records != 1 {
		t.Fatalf("verify: %+v, %v", s, err)
	}
	l = openT(t, dir) // and Open's byte-level check agrees
	if st := l.Stats(); st.Head == Genesis {
		t.Fatal("reopened at genesis")
	}
}
