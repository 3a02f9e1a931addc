package main

import (
	"fmt"
	"os"
	"runtime/trace"
	"sync"
	"time"
)

// lateTracer keeps the load's own execution trace in a flight recorder and writes it out when
// the pacer opens a tick late (callproof load --trace-late): the trace shows what held the
// load's processors in the seconds before. That is how the descriptor table's growth was
// found (see reserveDescriptors): the goroutines on both processors were in socket().
type lateTracer struct {
	fr     *trace.FlightRecorder
	prefix string

	mu    sync.Mutex
	n     int
	last  time.Time
	files []string
	wg    sync.WaitGroup
}

const (
	// traceLateAfter is how late the pacer must open a tick to write a trace: about the
	// time a frame has left before it counts as late.
	traceLateAfter = 8 * time.Millisecond
	// traceSnapshots bounds the traces one run writes, traceGap the time between them.
	traceSnapshots = 4
	traceGap       = 3 * time.Second
	// traceAfter is how long a snapshot waits, so that the trace shows the stall's end.
	traceAfter = 200 * time.Millisecond
)

// newLateTracer starts a flight recorder keeping about the last two seconds; snapshots go to
// prefix.1, prefix.2 and so on.
func newLateTracer(prefix string) (*lateTracer, error) {
	fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: 2 * time.Second, MaxBytes: 64 << 20})
	if err := fr.Start(); err != nil {
		return nil, fmt.Errorf("--trace-late: %w", err)
	}
	return &lateTracer{fr: fr, prefix: prefix}, nil
}

// woke notes the pacer opening at now the tick due at due, and schedules a snapshot when
// it was late, unless the run has written its last one or wrote one less than traceGap ago.
func (t *lateTracer) woke(due, now time.Time) {
	if now.Sub(due) <= traceLateAfter {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n >= traceSnapshots || (t.n > 0 && now.Sub(t.last) < traceGap) {
		return
	}
	t.n++
	t.last = now
	name := fmt.Sprintf("%s.%d", t.prefix, t.n)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		time.Sleep(traceAfter)
		if err := t.write(name); err == nil {
			t.mu.Lock()
			t.files = append(t.files, name)
			t.mu.Unlock()
		}
	}()
}

func (t *lateTracer) write(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := t.fr.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stop waits for the snapshots in progress, stops the recorder and returns the files written.
func (t *lateTracer) stop() []string {
	t.wg.Wait()
	t.fr.Stop()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.files
}
