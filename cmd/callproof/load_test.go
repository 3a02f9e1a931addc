package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	rtmetrics "runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callproof/callproof/media"
)

// `callproof load` places 20 real-time calls at once; every call is verified, the agent stream
// reports each verification, and the report's counts add up. Timing is not asserted.
func TestLoadVerifiesEveryCall(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time calls take about 45 s")
	}
	for _, mode := range []string{"events", "inband"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			n := startNode(t, nil)
			var out, errOut bytes.Buffer
			err := run(context.Background(), []string{"load", "--server", n.url, "--agent-key", testAgentKey,
				"--calls", "20", "--ramp", "2s", "--dtmf", mode, "--timeout", "2m", "--json"},
				func(string) string { return "" }, nil, &out, &errOut)
			if err != nil {
				t.Fatalf("load: %v\n%s\n%s", err, out.String(), errOut.String())
			}
			var r loadReport
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("report: %v\n%s", err, out.String())
			}
			if r.Started != 20 || r.Completed != 20 || r.Verified != 20 || r.Failed != 0 || len(r.FailReasons) != 0 {
				t.Errorf("started %d completed %d verified %d failed %d %v; want 20 verified",
					r.Started, r.Completed, r.Verified, r.Failed, r.FailReasons)
			}
			if r.PeakActive < 1 || r.PeakActive > 20 {
				t.Errorf("peak concurrency %d, want 1..20", r.PeakActive)
			}
			if r.DigitToVerified.N != 20 {
				t.Errorf("%d last-digit-to-verified samples, want one per call", r.DigitToVerified.N)
			}
			// The split at the server's stamp: both parts of every sample, each positive (the
			// server stamps after it heard the key, the reader reads after the stamp) and none
			// longer than the whole; the stream is read by a process of its own.
			kp, pr, kv := r.KeyedToPublished, r.PublishedToRead, r.KeyedToVerified
			if kp.N != 20 || pr.N != 20 || kv.N != 20 {
				t.Errorf("samples: recognisable->published %d, published->read %d, recognisable->verified %d; want 20 each", kp.N, pr.N, kv.N)
			}
			if kp.P50 <= 0 || pr.P50 <= 0 || kp.Max > kv.Max || pr.Max > kv.Max {
				t.Errorf("recognisable->published %+v and published->read %+v do not split recognisable->verified %+v", kp, pr, kv)
			}
			if r.AgentReader != "agent process" {
				t.Errorf("agent stream read by the %q, want the agent process", r.AgentReader)
			}
			// Every answer is followed by a prompt: at least one per factor and menu per call.
			if r.DigitToPrompt.N < 20*3 {
				t.Errorf("%d digit-to-prompt samples, want at least 3 per call", r.DigitToPrompt.N)
			}
			if r.FramesSent == 0 || r.FramesReceived == 0 || r.FramesLate > r.FramesSent {
				t.Errorf("frames sent %d received %d late %d", r.FramesSent, r.FramesReceived, r.FramesLate)
			}
			// A pacer wakes after its tick, never before; late means more than 10 ms behind.
			if r.FramesBehindMaxMs <= 0 || (r.FramesLate > 0) != (r.FramesBehindMaxMs > 10) {
				t.Errorf("frames at most %.3f ms behind, %d late", r.FramesBehindMaxMs, r.FramesLate)
			}
			if r.CallerSched.Sampled == 0 {
				t.Errorf("no scheduling latency of the callers' goroutines: %+v", r.CallerSched)
			}
			if !strings.Contains(errOut.String(), "active") {
				t.Errorf("no progress line on stderr:\n%s", errOut.String())
			}
		})
	}
}

// The null relay echoes every frame and runs no flow; load with --hold counts calls that
// stayed up as completed, none verified and none failed.
func TestLoadAgainstNullRelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var relayOut bytes.Buffer
	go func() {
		done <- run(ctx, []string{"load", "--null-relay-listen", addr}, nil, nil, &relayOut, &bytes.Buffer{})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("null relay: %v", err)
		}
	})
	for i := 0; ; i++ { // wait for the listener
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"load", "--server", "http://" + addr, "--calls", "5", "--hold", "1s", "--json"},
		func(string) string { return "" }, nil, &out, &errOut)
	if err != nil {
		t.Fatalf("load: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	var r loadReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	if r.Started != 5 || r.Completed != 5 || r.Failed != 0 || r.Verified != 0 {
		t.Errorf("started %d completed %d verified %d failed %d %v", r.Started, r.Completed, r.Verified, r.Failed, r.FailReasons)
	}
	if r.FramesSent == 0 || r.FramesReceived == 0 || r.FramesReceived > r.FramesSent {
		t.Errorf("frames sent %d received %d: the relay echoes what it gets", r.FramesSent, r.FramesReceived)
	}
}

// The sampler reports what the server counted late or dropped during the run (the
// difference between its first and last /metrics), and nothing for a server without
// those counters.
func TestServerSamplerFrames(t *testing.T) {
	var mu sync.Mutex
	body := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		io.WriteString(w, body)
	}))
	defer srv.Close()
	set := func(s string) { mu.Lock(); body = s; mu.Unlock() }

	set(`# HELP go_memstats_heap_inuse_bytes Number of heap bytes that are in use.
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 1.048576e+06
callproof_frames_late_total 3
callproof_dropped_total{what="event"} 1
callproof_dropped_total{what="prompt"} 0
callproof_dropped_total{what="frame"} 7
not a sample
`)
	s, err := newServerSampler(os.Getpid(), srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.idleHeap != 1<<20 {
		t.Errorf("idle heap %d, want %d", s.idleHeap, 1<<20)
	}
	set(`go_memstats_heap_inuse_bytes 2.097152e+06
callproof_frames_late_total 5
callproof_dropped_total{what="event"} 1
callproof_dropped_total{what="prompt"} 4
callproof_dropped_total{what="frame"} 10
`)
	s.sample(true)
	u := s.finish(10, 1)
	want := serverFrames{Late: 2, DroppedEvents: 0, DroppedPrompts: 4, DroppedFrames: 3}
	if u.Frames == nil || *u.Frames != want {
		t.Errorf("server frames %+v, want %+v", u.Frames, want)
	}
	if u.PeakHeapBytes != 2<<20 {
		t.Errorf("peak heap %d, want %d", u.PeakHeapBytes, 2<<20)
	}

	// A null relay exports no counters: no figure rather than a zero.
	set("go_memstats_heap_inuse_bytes 1024\n")
	s, err = newServerSampler(os.Getpid(), srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	s.sample(true)
	if u := s.finish(10, 1); u.Frames != nil {
		t.Errorf("server frames %+v from a server without the counters", u.Frames)
	}
}

func TestSummarizeSched(t *testing.T) {
	h := &rtmetrics.Float64Histogram{Buckets: []float64{0, 1e-3, 5e-3, 1e-2, math.Inf(1)}, Counts: []uint64{980, 15, 4, 1}}
	want := schedLatency{Sampled: 1000, Over5ms: 5, P99: 5, P999: 10, Max: 10}
	if got := summarizeSched(h); got != want {
		t.Fatalf("summarizeSched = %+v, want %+v", got, want)
	}
	h.Counts = []uint64{0, 0, 0, 0}
	if got := summarizeSched(h); got != (schedLatency{}) {
		t.Fatalf("nothing sampled: %+v", got)
	}
	if got := readSchedLatency(); got.Sampled == 0 || got.Max <= 0 {
		t.Fatalf("this test process's own latencies: %+v", got)
	}
}

// countingCall is a simCall that counts the frames written to it; with block set, its second
// write waits until block is closed, as a write does when its thread is preempted.
type countingCall struct {
	sent  atomic.Int64
	block chan struct{}
}

func (c *countingCall) SendDTMF(byte) error { return nil }
func (c *countingCall) SendAudio([]int16) error {
	if c.sent.Add(1) == 2 && c.block != nil {
		<-c.block
	}
	return nil
}
func (c *countingCall) Events() <-chan media.SimEvent { return nil }
func (c *countingCall) Close() error                  { return nil }

// While one call's write is stuck, the pacer's other workers keep every other call's frames
// going, and do not wait on the stuck call; once its write returns, the call catches up: its
// frames owed meanwhile go out, counted late, none skipped. (With a goroutine per shard of
// calls, every call of the stuck call's shard stopped with it.)
func TestPacerSendsAroundAStuckWrite(t *testing.T) {
	st := &loadStats{reasons: map[string]int64{}}
	p := newPacer(st, false, 40)
	ctx, cancel := context.WithCancel(context.Background())
	done := p.run(ctx)
	defer func() { cancel(); done.Wait() }()

	stuck := &countingCall{block: make(chan struct{})}
	calls := []*countingCall{stuck}
	for range 39 {
		calls = append(calls, &countingCall{})
	}
	var paced []*pacedCall
	for _, c := range calls {
		pc := newPacedCall(c, nil)
		paced = append(paced, pc)
		p.add(pc)
	}
	eventually(t, 10*time.Second, "the stuck call's second write", func() bool { return stuck.sent.Load() == 2 })
	before := make([]int64, len(calls))
	for i, c := range calls {
		before[i] = c.sent.Load()
	}
	time.Sleep(300 * time.Millisecond) // 15 frames' time
	for i, c := range calls[1:] {
		if n := c.sent.Load() - before[i+1]; n < 5 {
			t.Errorf("call %d: %d frames in 300 ms while another call's write was stuck, want about 15", i+1, n)
		}
	}
	if n := stuck.sent.Load(); n != 2 {
		t.Errorf("the stuck call was written to %d times, want 2: a worker wrote while its write was in progress", n)
	}

	close(stuck.block)
	eventually(t, 10*time.Second, "the stuck call to catch up", func() bool { return stuck.sent.Load() >= calls[1].sent.Load()-1 })
	if n := st.late.Load(); n < 10 {
		t.Errorf("%d frames counted late, want the stuck call's 14 or so", n)
	}
	for _, pc := range paced {
		p.remove(pc)
	}
	sent := make([]int64, len(calls))
	for i, c := range calls {
		sent[i] = c.sent.Load()
	}
	time.Sleep(3 * pacerTick * time.Duration(ticksPerFrame))
	for i, c := range calls {
		if n := c.sent.Load(); n != sent[i] {
			t.Errorf("call %d: written to after remove (%d, then %d)", i, sent[i], n)
		}
		if d := sent[i] - sent[1]; d < -2 || d > 2 {
			t.Errorf("call %d sent %d frames, call 1 %d: frames were skipped", i, sent[i], sent[1])
		}
	}
	if got, want := st.sent.Load(), sumOf(sent); got != want {
		t.Errorf("the run counted %d frames sent, the calls were written %d", got, want)
	}
}

func sumOf(xs []int64) (n int64) {
	for _, x := range xs {
		n += x
	}
	return n
}
