package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A late wake-up writes the load's execution trace; an on-time one does not, nor does a
// second late one within traceGap.
func TestLateTracer(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "late.trace")
	tr, err := newLateTracer(prefix)
	if err != nil {
		t.Fatal(err)
	}
	due := time.Now()
	tr.woke(due, due.Add(traceLateAfter/2)) // on time
	tr.woke(due, due.Add(2*traceLateAfter)) // late: a snapshot
	tr.woke(due.Add(time.Second), due.Add(time.Second+2*traceLateAfter))
	files := tr.stop()
	if len(files) != 1 || files[0] != prefix+".1" {
		t.Fatalf("wrote %v, want %s.1 only", files, prefix)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("go 1.")) || !bytes.Contains(data[:16], []byte(" trace")) {
		t.Errorf("%s does not start like an execution trace: %q", files[0], data[:min(len(data), 16)])
	}
	if _, err := os.Stat(prefix + ".2"); !os.IsNotExist(err) {
		t.Errorf("a second snapshot within %s: %v", traceGap, err)
	}
}
