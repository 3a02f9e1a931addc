package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

var q0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func openQ(t *testing.T, dir string, opts ...QueueOption) *FileQueue {
	t.Helper()
	q, err := OpenFileQueue(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func put(t *testing.T, q *FileQueue, id string, next time.Time) {
	t.Helper()
	err := q.Enqueue(context.Background(), Delivery{ID: id, URL: "https://crm.example.com/h", Key: "jti_" + id,
		Body: []byte(`{"id":"jti_` + id + `"}`), Created: q0, NextAt: next})
	if err != nil {
		t.Fatal(err)
	}
}

func lease(t *testing.T, q *FileQueue, now time.Time) (string, time.Time) {
	t.Helper()
	d, next, err := q.Lease(context.Background(), now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if d == nil {
		return "", next
	}
	return d.ID, next
}

func TestFileQueueLeaseOrder(t *testing.T) {
	q := openQ(t, t.TempDir())
	put(t, q, "b", q0.Add(2*time.Second))
	put(t, q, "a", q0)
	put(t, q, "c", q0)
	put(t, q, "later", q0.Add(time.Hour))
	ctx := context.Background()

	// Due first by NextAt, then by queue order; a leased delivery is not leased again.
	for _, want := range []string{"a", "c"} {
		if id, _ := lease(t, q, q0); id != want {
			t.Fatalf("Lease = %q, want %q", id, want)
		}
	}
	if id, next := lease(t, q, q0); id != "" || !next.Equal(q0.Add(2*time.Second)) {
		t.Fatalf("Lease = %q next %v, want none until b is due", id, next)
	}
	if id, _ := lease(t, q, q0.Add(2*time.Second)); id != "b" {
		t.Fatalf("Lease = %q, want b", id)
	}
	if s, _ := q.Stats(ctx); s.Leased != 3 || s.Pending != 1 {
		t.Fatalf("stats %+v", s)
	}
	// A lease runs out: a is due again after a minute.
	if id, _ := lease(t, q, q0.Add(61*time.Second)); id != "a" {
		t.Fatalf("after the lease expired, Lease = %q, want a", id)
	}
	if err := q.Ack(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"ack twice":       q.Ack(ctx, "a"),
		"retry unknown":   q.Retry(ctx, "zz", q0, "x"),
		"dead unknown":    q.DeadLetter(ctx, "zz", "x"),
		"requeue live":    q.Requeue(ctx, "c", q0),
		"enqueue same id": q.Enqueue(ctx, Delivery{ID: "c"}),
	} {
		if !errors.Is(err, ErrNotFound) && !(name == "enqueue same id" && err != nil) {
			t.Errorf("%s = %v", name, err)
		}
	}
}

func TestFileQueueSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q := openQ(t, dir)
	put(t, q, "ok", q0)
	put(t, q, "retry", q0)
	put(t, q, "dead", q0)
	put(t, q, "fresh", q0)
	put(t, q, "leased", q0)
	_ = q.Ack(ctx, "ok")
	_ = q.Retry(ctx, "retry", q0.Add(time.Minute), "HTTP 503")
	_ = q.Retry(ctx, "dead", q0.Add(time.Minute), "timeout")
	_ = q.DeadLetter(ctx, "dead", "HTTP 500")
	for id, _ := lease(t, q, q0); id != "leased"; id, _ = lease(t, q, q0) {
	}
	_ = q.Close()

	q = openQ(t, dir)
	s, _ := q.Stats(ctx)
	if s != (QueueStats{Pending: 2, Retrying: 1, Dead: 1, Delivered: 1}) {
		t.Fatalf("after restart %+v", s)
	}
	var d *Delivery
	for {
		d, _, _ = q.Lease(ctx, q0.Add(time.Minute), time.Minute)
		if d == nil || d.ID == "retry" {
			break
		}
	}
	if d == nil || d.Attempts != 1 || d.LastError != "HTTP 503" || string(d.Body) != `{"id":"jti_retry"}` {
		t.Fatalf("retry after restart: %+v", d)
	}
	dead, _ := q.DeadLetters(ctx)
	if len(dead) != 1 || dead[0].ID != "dead" || dead[0].Attempts != 2 || dead[0].LastError != "HTTP 500" || !dead[0].Dead {
		t.Fatalf("dead letters %+v", dead)
	}
	if err := q.Requeue(ctx, "dead", q0); err != nil {
		t.Fatal(err)
	}
	_ = q.Close()
	q = openQ(t, dir)
	if s, _ := q.Stats(ctx); s.Dead != 0 || s.Pending != 3 {
		t.Fatalf("after requeue and restart %+v", s)
	}
	if fi, _ := os.Stat(filepath.Join(dir, QueueFileName)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("queue file mode %v", fi.Mode().Perm())
	}
	if _, err := OpenFileQueue(dir); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second open of a locked queue = %v", err)
	}
}

func TestFileQueueCompacts(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q := openQ(t, dir)
	for i := range 3000 {
		id := fmt.Sprintf("d%d", i)
		put(t, q, id, q0)
		if err := q.Ack(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	put(t, q, "kept", q0)
	data, _ := os.ReadFile(filepath.Join(dir, QueueFileName))
	if lines := bytes.Count(data, []byte("\n")); lines > 2*1+1024+1 {
		t.Fatalf("journal has %d lines for one live delivery", lines)
	}
	_ = q.Close()
	q = openQ(t, dir)
	if s, _ := q.Stats(ctx); s != (QueueStats{Pending: 1, Delivered: 3000}) {
		t.Fatalf("after compaction and restart %+v", s)
	}
}

func TestFileQueueRecovery(t *testing.T) {
	dir := t.TempDir()
	q := openQ(t, dir)
	put(t, q, "a", q0)
	put(t, q, "b", q0)
	_ = q.Close()
	path := filepath.Join(dir, QueueFileName)
	data, _ := os.ReadFile(path)
	// A garbage line in the middle, and a put cut short at the end.
	lines := bytes.SplitAfter(data, []byte("\n"))
	damaged := bytes.Join([][]byte{lines[0], lines[1], []byte("{not json\n"), lines[2], lines[2][:20]}, nil)
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	q = openQ(t, dir, WithQueueLogger(zap.New(core)))
	if s, _ := q.Stats(context.Background()); s.Pending != 2 {
		t.Fatalf("after recovery %+v", s)
	}
	if logs.FilterMessageSnippet("cut short").Len() != 1 || logs.FilterMessageSnippet("does not parse").Len() != 1 {
		t.Fatalf("recovery logs: %v", logs.All())
	}
	if after, _ := os.ReadFile(path); bytes.Contains(after, []byte("not json")) {
		t.Fatal("the damaged journal was not rewritten")
	}
}

func TestFileQueueMaxDead(t *testing.T) {
	q := openQ(t, t.TempDir(), WithMaxDead(2))
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		put(t, q, id, q0)
		if err := q.DeadLetter(ctx, id, "HTTP 400"); err != nil {
			t.Fatal(err)
		}
	}
	dead, _ := q.DeadLetters(ctx)
	if len(dead) != 2 || dead[0].ID != "b" || dead[1].ID != "c" {
		t.Fatalf("dead letters %+v, want b and c", dead)
	}
	if _, err := OpenFileQueue(t.TempDir(), WithMaxDead(0)); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("WithMaxDead(0): %v", err)
	}
}

func TestFileQueueFsyncFailureIsSticky(t *testing.T) {
	q := openQ(t, t.TempDir())
	put(t, q, "a", q0)
	q.sync = func(*os.File) error { return errors.New("EIO") }
	err := q.Enqueue(context.Background(), Delivery{ID: "b", Body: []byte("{}")})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Enqueue with failing fsync = %v", err)
	}
	q.sync = (*os.File).Sync
	if err := q.Ack(context.Background(), "a"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ack after a failed fsync = %v, want sticky ErrUnavailable", err)
	}
	_ = q.Close()
	if _, _, err := q.Lease(context.Background(), q0, time.Minute); !errors.Is(err, ErrClosed) {
		t.Fatalf("Lease after Close = %v", err)
	}
}
