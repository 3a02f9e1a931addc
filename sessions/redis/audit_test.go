package redis_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions/audit"
	"github.com/callproof/callproof/sessions/redis/redistest"
)

func record(i int) audit.Record {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return audit.Record{ID: fmt.Sprintf("req_%04d", i), Received: now, Responded: now.Add(time.Second),
		Request: "know_categories", Platform: "twilio", Call: fmt.Sprintf("CA%04d", i), Locale: "en-US",
		Outcome: "verified", Level: "reasonable", Factors: []audit.FactorResult{{Name: "dob", Result: "passed"}}}
}

// Two nodes append to the shared stream; the writer forwards everything to its chained file.
// A writer that read entries and died before acknowledging them gets them again on restart,
// so no record is lost and none is written twice.
func TestAuditStreamSingleWriter(t *testing.T) {
	addr, prefix := redistest.Addr(t), redistest.Prefix()
	nodeA, nodeB, writer := open(t, addr, prefix), open(t, addr, prefix), open(t, addr, prefix)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		n := nodeA
		if i%2 == 1 {
			n = nodeB
		}
		if err := n.AuditStream("node").Append(ctx, record(i)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	// The writer reads a batch and "dies" before acknowledging it.
	src := writer.AuditStream("writer-1")
	got, err := src.Receive(ctx)
	if err != nil || len(got) != 10 {
		t.Fatalf("first read: %d entries, %v", len(got), err)
	}
	// Restarted, it reads its own pending entries first, and forwards them to the file.
	dir := t.TempDir()
	log, err := audit.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- audit.Forward(fctx, writer.AuditStream("writer-1"), log, nil) }()
	deadline := time.Now().Add(10 * time.Second)
	for log.Stats().Appended < 10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// More records arrive while it runs.
	if err := nodeA.AuditStream("node").Append(ctx, record(10)); err != nil {
		t.Fatal(err)
	}
	for log.Stats().Appended < 11 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Forward: %v", err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, audit.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum, err := audit.VerifyChain(f)
	if err != nil || sum.Records != 11 {
		t.Fatalf("file holds %d records (%v), want 11, each once", sum.Records, err)
	}
	// Nothing is left to forward.
	left, err := writer.AuditStream("writer-1").Receive(ctx)
	if err != nil || len(left) != 0 {
		t.Fatalf("%d entries left in the stream (%v)", len(left), err)
	}
	// A record that does not validate is refused at the node, before Redis.
	bad := record(99)
	bad.Call = "+14155550100"
	if err := nodeA.AuditStream("node").Append(ctx, bad); err == nil {
		t.Fatal("a record carrying a phone number was queued")
	}
}
