package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/audiosocket"
	"github.com/callproof/callproof/media/twilio"
	"github.com/callproof/callproof/prompts"
)

// loadOptions are `callproof load`'s settings beyond one call's.
type loadOptions struct {
	call     callOptions
	calls    int
	ramp     time.Duration
	duration time.Duration
	hold     time.Duration
	pid      int
	admin    string
	json     bool
	tone     bool
	progress time.Duration
	// traceLate: write the load's execution trace to this prefix when the pacer opens a tick late.
	traceLate string
}

// loadReport is the final report of a load run (--json prints it as is).
type loadReport struct {
	Platform       string           `json:"platform"`
	DTMF           string           `json:"dtmf"`
	Concurrency    int              `json:"concurrency"`
	Started        int64            `json:"started"`
	Completed      int64            `json:"completed"`
	Verified       int64            `json:"verified"`
	Failed         int64            `json:"failed"`
	FailReasons    map[string]int64 `json:"fail_reasons,omitempty"`
	PeakActive     int64            `json:"peak_active"`
	WallSeconds    float64          `json:"wall_seconds"`
	CallSeconds    float64          `json:"call_seconds"`
	FramesSent     int64            `json:"frames_sent"`
	FramesReceived int64            `json:"frames_received"`
	FramesLate     int64            `json:"frames_late"`
	// FramesBehindMaxMs is the most any frame went out behind its time, late or not.
	FramesBehindMaxMs float64 `json:"frames_behind_max_ms"`
	// CallerSched is how long the load's own goroutines waited to run once ready (Go's
	// runtime/metrics /sched/latencies:seconds, a sample of them, as bucket upper bounds): long
	// waits here mean the callers themselves were short of CPU, which makes frames late
	// whatever the server does.
	CallerSched     schedLatency   `json:"caller_sched_ms"`
	DigitToPrompt   latencySummary `json:"digit_to_prompt_ms"`
	DigitToVerified latencySummary `json:"digit_to_agent_verified_ms"`
	// KeyedToPrompt and KeyedToVerified time the same from the moment the key could first be
	// recognised: its digit event sent, or in band the send of its second 20 ms frame of tone
	// (40 ms of tone, the shortest a Q.24 receiver must accept).
	KeyedToPrompt   latencySummary `json:"recognisable_to_prompt_ms"`
	KeyedToVerified latencySummary `json:"recognisable_to_agent_verified_ms"`
	// AgentReader is where the agent stream was read: "agent process", a process of its own
	// as an agent's desktop would be, or "load process" when none could be started (its
	// reader then waits behind the callers, and the latencies to `verified` count that wait).
	AgentReader string `json:"agent_stream_reader,omitempty"`
	// KeyedToPublished and PublishedToRead split KeyedToVerified at the time the server
	// stamped on the `verified` message (its "at", set as the flow hands it to the agent
	// stream, after the token is signed and the record kept): the server's part, from the
	// key to that stamp, and the rest, the agent stream's fan-out, the socket and the
	// reader. The stamp is the server's clock: the split holds when both run on one machine.
	KeyedToPublished latencySummary    `json:"recognisable_to_server_published_ms"`
	PublishedToRead  latencySummary    `json:"server_published_to_agent_read_ms"`
	Server           *serverUsage      `json:"server,omitempty"`
	Extra            map[string]string `json:"extra,omitempty"`
}

// schedLatency summarises a scheduling latency histogram in milliseconds: the upper bounds of
// the buckets that hold the percentiles and the largest wait, and how many waits were sampled
// and how many of them lasted 5 ms or more.
type schedLatency struct {
	Sampled uint64  `json:"sampled"`
	Over5ms uint64  `json:"over_5ms"`
	P99     float64 `json:"p99"`
	P999    float64 `json:"p999"`
	Max     float64 `json:"max"`
}

// readSchedLatency reads this process's goroutine scheduling latencies so far.
func readSchedLatency() schedLatency {
	sm := []rtmetrics.Sample{{Name: "/sched/latencies:seconds"}}
	rtmetrics.Read(sm)
	if sm[0].Value.Kind() != rtmetrics.KindFloat64Histogram {
		return schedLatency{}
	}
	return summarizeSched(sm[0].Value.Float64Histogram())
}

// summarizeSched summarises h, whose Buckets are the len(Counts)+1 boundaries in seconds.
func summarizeSched(h *rtmetrics.Float64Histogram) schedLatency {
	var r schedLatency
	upper := func(i int) float64 { // the bucket's upper bound, or its lower one when unbounded
		if b := h.Buckets[i+1]; !math.IsInf(b, 1) {
			return b * 1e3
		}
		return h.Buckets[i] * 1e3
	}
	for i, c := range h.Counts {
		r.Sampled += c
		if c > 0 {
			r.Max = upper(i)
		}
		if h.Buckets[i] >= 0.005 {
			r.Over5ms += c
		}
	}
	if r.Sampled == 0 {
		return r
	}
	var cum uint64
	for i, c := range h.Counts {
		cum += c
		if r.P99 == 0 && float64(cum) >= 0.99*float64(r.Sampled) {
			r.P99 = upper(i)
		}
		if r.P999 == 0 && float64(cum) >= 0.999*float64(r.Sampled) {
			r.P999 = upper(i)
		}
	}
	return r
}

// latencySummary holds percentiles in milliseconds.
type latencySummary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// serverUsage is what --pid measured of the server process.
type serverUsage struct {
	PID                int     `json:"pid"`
	CPUSeconds         float64 `json:"cpu_seconds"`
	CPUPerCallSecond   float64 `json:"cpu_seconds_per_call_second"`
	PeakRSSBytes       int64   `json:"peak_rss_bytes"` // VmHWM at the end (since the server started)
	PeakRSSRunBytes    int64   `json:"peak_rss_sampled_bytes"`
	PeakHeapBytes      int64   `json:"peak_heap_inuse_bytes,omitempty"` // from /metrics, sampled each second
	RSSPerCallBytes    float64 `json:"rss_per_call_bytes"`
	HeapPerCallBytes   float64 `json:"heap_per_call_bytes,omitempty"`
	IdleRSSBytes       int64   `json:"idle_rss_bytes"`
	IdleHeapInuseBytes int64   `json:"idle_heap_inuse_bytes,omitempty"`
	// With --admin: the live heap (HeapAlloc just after a forced GC) and goroutine stacks in
	// use, idle and once at peak concurrency, and per call at that moment.
	LiveHeapBytes        int64   `json:"live_heap_bytes,omitempty"`
	IdleLiveHeapBytes    int64   `json:"idle_live_heap_bytes,omitempty"`
	LiveHeapPerCallBytes float64 `json:"live_heap_per_call_bytes,omitempty"`
	StackBytes           int64   `json:"stack_inuse_bytes,omitempty"`
	IdleStackBytes       int64   `json:"idle_stack_inuse_bytes,omitempty"`
	StackPerCallBytes    float64 `json:"stack_per_call_bytes,omitempty"`
	LiveSampledCalls     int64   `json:"live_sampled_calls,omitempty"`
	// Frames is what the server itself counted late or dropped during the run, from its
	// /metrics; absent when the server does not export those counters (the null relay).
	Frames *serverFrames `json:"server_frames,omitempty"`
}

// serverFrames are the server's own counts of what it sent late or dropped during a run.
type serverFrames struct {
	// Late is callproof_frames_late_total: outbound frames a paced writer sent behind
	// schedule (AudioSocket, WebRTC, SIP; a WebSocket platform's audio is not paced).
	Late int64 `json:"late"`
	// Dropped is callproof_dropped_total by what: events the flow fell behind on, prompts
	// the peer did not keep up with, outbound frames the socket refused.
	DroppedEvents  int64 `json:"dropped_events"`
	DroppedPrompts int64 `json:"dropped_prompts"`
	DroppedFrames  int64 `json:"dropped_frames"`
}

func runLoad(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var lo loadOptions
	o := &lo.call
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.server, "server", "http://127.0.0.1:8080", "server base URL")
	fs.StringVar(&o.platform, "platform", "twilio", "platform dialect to speak: "+strings.Join(simPlatforms, ", "))
	fs.StringVar(&o.sip, "sip", "127.0.0.1:5060", "SIP address (--platform sip)")
	fs.StringVar(&o.audiosocket, "audiosocket", "127.0.0.1:9092", "AudioSocket address (--platform audiosocket)")
	fs.StringVar(&o.platformUser, "platform-user", "", "HTTP Basic user the platform presents (asterisk)")
	fs.StringVar(&o.platformPassword, "platform-password", "", "HTTP Basic password the platform presents (default: CALLPROOF_PLATFORM_PASSWORD)")
	fs.StringVar(&o.authToken, "auth-token", "", "Twilio auth token (default: CALLPROOF_TWILIO_AUTH_TOKEN)")
	fs.StringVar(&o.customer, "customer", "cus_ada", "customer id whose answers to give (from --directory)")
	fs.StringVar(&o.directory, "directory", "", "customer directory YAML (default: the demo directory)")
	fs.StringVar(&o.agentKey, "agent-key", "", "agent key for the agent stream (default: CALLPROOF_AGENT_KEY or the demo's key file)")
	fs.StringVar(&o.dataDir, "data", "", "the demo's data directory, to find its agent key")
	fs.StringVar(&o.dtmf, "dtmf", "events", "how digits are sent: events or inband")
	fs.StringVar(&o.to, "to", "+18005550199", "dialled number")
	fs.StringVar(&o.verstat, "verstat", "TN-Validation-Passed-A", "STIR/SHAKEN verstat the platform reports")
	fs.IntVar(&lo.calls, "calls", 50, "concurrent calls")
	fs.DurationVar(&lo.ramp, "ramp", 0, "spread the first call starts over this long")
	fs.DurationVar(&lo.duration, "duration", 0, "keep --calls calls up, starting a new call as one ends, for this long (default: each slot runs one call)")
	fs.DurationVar(&lo.hold, "hold", 0, "hang up each call after this long without expecting an outcome (for a null relay)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on one call after this long")
	fs.IntVar(&lo.pid, "pid", 0, "server process id, to sample its CPU and peak RSS")
	fs.StringVar(&lo.admin, "admin", "", "the server's admin listener URL (pprof), to measure its live heap and stacks after a forced GC, idle and at peak concurrency (with --pid)")
	fs.BoolVar(&lo.json, "json", false, "print the report as JSON")
	fs.BoolVar(&lo.tone, "tone", false, "send a quiet 440 Hz tone instead of silence between answers")
	fs.StringVar(&lo.traceLate, "trace-late", "", "keep the load's own execution trace and write the last seconds of it to FILE.1 .. FILE.4 when its pacer wakes late (go tool trace FILE.1)")
	nullRelay := fs.String("null-relay-listen", "", "instead of calling, serve a null relay (Twilio streams echoed, no flow) on ADDR")
	nullBatch := fs.Int("null-relay-batch", 1, "the null relay echoes this many inbound frames as one media message (Callproof sends prompts in 1 s messages: 50)")
	if err := fs.Parse(args); err != nil {
		return exitError{code: 2}
	}
	lo.progress = time.Second
	if *nullRelay != "" {
		return serveNullRelay(ctx, *nullRelay, max(*nullBatch, 1), stdout)
	}
	if !slices.Contains(simPlatforms, o.platform) {
		return exitError{code: 2, msg: fmt.Sprintf("load: platform %q: want one of %s", o.platform, strings.Join(simPlatforms, ", "))}
	}
	defer quietGC()()
	if o.platform == "freeswitch" {
		o.dtmf = "inband"
	}
	if o.dtmf != "events" && o.dtmf != "inband" {
		return exitError{code: 2, msg: fmt.Sprintf("load: --dtmf %q: want events or inband", o.dtmf)}
	}
	if lo.calls < 1 {
		return exitError{code: 2, msg: "load: --calls must be at least 1"}
	}
	if o.platformPassword == "" {
		o.platformPassword = getenv("CALLPROOF_PLATFORM_PASSWORD")
	}
	if o.authToken == "" {
		o.authToken = getenv("CALLPROOF_TWILIO_AUTH_TOKEN")
	}
	if o.agentKey == "" {
		o.agentKey = getenv("CALLPROOF_AGENT_KEY")
	}
	if o.agentKey == "" {
		dir := o.dataDir
		if dir == "" {
			dir = demoDataDir()
		}
		if data, err := os.ReadFile(filepath.Join(dir, agentKeyFile)); err == nil {
			o.agentKey = strings.TrimSpace(string(data))
		}
	}
	o.registrationKey = o.agentKey
	o.realtime = true
	answers, cust, err := buildAnswers(*o)
	if err != nil {
		return exitError{code: 2, msg: "load: " + err.Error()}
	}
	o.from = "+15555550123"
	if cust != nil && len(cust.Phones) > 0 {
		o.from = cust.Phones[0]
	}
	rep, err := loadRun(ctx, lo, answers, stderr)
	if err != nil {
		return err
	}
	if lo.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printLoadReport(stdout, rep)
	}
	if rep.Failed > 0 {
		return exitError{code: 1, msg: fmt.Sprintf("%d of %d calls failed", rep.Failed, rep.Started)}
	}
	return nil
}

// loadStats are the run's counters, shared by every call.
type loadStats struct {
	active, peak, started, completed, verified, failed atomic.Int64
	sent, received, late                               atomic.Int64
	callNanos                                          atomic.Int64
	behind                                             atomic.Int64 // the most a frame went out behind its time, ns

	mu             sync.Mutex
	reasons        map[string]int64
	toPrompt       []time.Duration
	toVerdict      []time.Duration
	keyedToPrompt  []time.Duration
	keyedToVerdict []time.Duration
	keyedToPub     []time.Duration
	pubToRead      []time.Duration
}

func (s *loadStats) fail(reason string) {
	s.failed.Add(1)
	s.mu.Lock()
	s.reasons[reason]++
	s.mu.Unlock()
}

func loadRun(ctx context.Context, lo loadOptions, answers map[string]string, progress io.Writer) (*loadReport, error) {
	o := lo.call
	// A call takes a socket, the agent streams and the server's metrics a few more. Grown
	// while the calls start, the table made a dialling goroutine hold its processor for an
	// RCU grace period at each doubling, and the pacer's frames due then went out late.
	if _, err := reserveDescriptors(2*lo.calls + 1024); err != nil {
		fmt.Fprintf(progress, "load: descriptor table not grown in advance: %v\n", err)
	}
	st := &loadStats{reasons: map[string]int64{}}
	var index *media.PromptIndex
	if o.platform != "twilio" && o.platform != "telnyx" {
		cat, err := prompts.Load()
		if err != nil {
			return nil, err
		}
		if index, err = promptIndex(cat, o.platform == "sip" || o.platform == "webrtc"); err != nil {
			return nil, err
		}
	}
	var agents *agentWatch
	if o.agentKey != "" && lo.hold == 0 {
		a, err := watchAllAgents(ctx, o.server, o.agentKey, progress)
		if err != nil {
			return nil, err
		}
		defer a.close()
		agents = a
	}
	var srv *serverSampler
	if lo.pid > 0 {
		s, err := newServerSampler(lo.pid, o.server, lo.admin)
		if err != nil {
			return nil, err
		}
		srv = s
	}

	start := time.Now()
	deadline := time.Time{}
	if lo.duration > 0 {
		deadline = start.Add(lo.ramp + lo.duration)
	}
	pace := newPacer(st, lo.tone, lo.calls)
	if lo.traceLate != "" {
		tr, err := newLateTracer(lo.traceLate)
		if err != nil {
			return nil, err
		}
		pace.trace = tr
		defer func() {
			for _, f := range tr.stop() {
				fmt.Fprintf(progress, "load: execution trace of a late wake-up in %s\n", f)
			}
		}()
	}
	paceCtx, stopPace := context.WithCancel(ctx)
	paceDone := pace.run(paceCtx)
	defer func() { stopPace(); paceDone.Wait() }()

	tickCtx, stopTick := context.WithCancel(ctx)
	tickDone := make(chan struct{})
	go func() {
		defer close(tickDone)
		t := time.NewTicker(lo.progress)
		defer t.Stop()
		for {
			select {
			case <-tickCtx.Done():
				return
			case <-t.C:
				if srv != nil {
					srv.sample(false)
					// Once every call is up and the ramp has settled: one forced GC on the server.
					if a := st.active.Load(); a >= int64(lo.calls) && time.Since(start) > lo.ramp+5*time.Second {
						srv.sampleLive(a)
					}
				}
				fmt.Fprintf(progress, "%5.0fs active %d completed %d verified %d failed %d frames sent %d received %d late %d\n",
					time.Since(start).Seconds(), st.active.Load(), st.completed.Load(), st.verified.Load(), st.failed.Load(),
					st.sent.Load(), st.received.Load(), st.late.Load())
			}
		}
	}()

	var wg sync.WaitGroup
	for i := 0; i < lo.calls; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if lo.ramp > 0 {
				select {
				case <-time.After(time.Duration(int64(lo.ramp) * int64(i) / int64(lo.calls))):
				case <-ctx.Done():
					return
				}
			}
			for {
				if ctx.Err() != nil {
					return
				}
				loadCall(ctx, lo, answers, index, agents, pace, st)
				if deadline.IsZero() || time.Now().After(deadline) {
					return
				}
			}
		}(i)
	}
	wg.Wait()
	stopTick()
	<-tickDone
	wall := time.Since(start)

	rep := &loadReport{Platform: o.platform, DTMF: o.dtmf, Concurrency: lo.calls,
		Started: st.started.Load(), Completed: st.completed.Load(), Verified: st.verified.Load(), Failed: st.failed.Load(),
		FailReasons: st.reasons, PeakActive: st.peak.Load(), WallSeconds: wall.Seconds(),
		CallSeconds:    time.Duration(st.callNanos.Load()).Seconds(),
		FramesSent:     st.sent.Load(),
		FramesReceived: st.received.Load(), FramesLate: st.late.Load(),
		FramesBehindMaxMs: float64(st.behind.Load()) / 1e6, CallerSched: readSchedLatency(),
		DigitToPrompt: summarize(st.toPrompt), DigitToVerified: summarize(st.toVerdict),
		KeyedToPrompt: summarize(st.keyedToPrompt), KeyedToVerified: summarize(st.keyedToVerdict),
		KeyedToPublished: summarize(st.keyedToPub), PublishedToRead: summarize(st.pubToRead)}
	if agents != nil {
		rep.AgentReader = agents.reader
	}
	if srv != nil {
		srv.sample(true)
		rep.Server = srv.finish(rep.CallSeconds, int64(lo.calls))
	}
	return rep, ctx.Err()
}

// loadCall places one call and records what it saw.
func loadCall(ctx context.Context, lo loadOptions, answers map[string]string, index *media.PromptIndex, agents *agentWatch, pace *pacer, st *loadStats) {
	o := lo.call
	st.started.Add(1)
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	callID := newCallSid()
	if o.platform == "audiosocket" {
		callID = audiosocket.FormatUUID(audiosocket.NewUUID())
	}
	var verdict chan verdictSeen
	if agents != nil && o.platform != "webrtc" && o.platform != "sip" {
		verdict = agents.expect(callID)
		defer agents.forget(callID)
	}
	var (
		sim      simCall
		dialect  simDialect
		id       string
		received func() uint64
		err      error
	)
	if o.platform == "twilio" {
		var cl *twilio.Client
		cl, err = dialLoadTwilio(ctx, o, callID)
		if err == nil {
			sim, dialect, id, received = newTwilioSim(cl), simDialect{named: true, ulaw: true, played: true}, callID, cl.Received
		}
	} else {
		sim, dialect, id, err = dialPlatform(ctx, o, callID, nil, io.Discard)
	}
	if err != nil {
		st.fail("dial: " + shortErr(err))
		return
	}
	if verdict == nil && agents != nil {
		verdict = agents.expect(id)
		defer agents.forget(id)
	}
	begin := time.Now()
	n := st.active.Add(1)
	for {
		p := st.peak.Load()
		if n <= p || st.peak.CompareAndSwap(p, n) {
			break
		}
	}
	defer func() {
		st.active.Add(-1)
		st.callNanos.Add(int64(time.Since(begin)))
	}()

	pc := newPacedCall(sim, received)
	drv := &simDriver{sim: pc, answers: answers, namedMarks: dialect.named, played: dialect.played, realtime: true,
		inband: o.dtmf == "inband", paced: true, out: io.Discard, index: index,
		passcode: func() (string, error) { return demoPasscode(ctx, o.server, id) }}
	pace.add(pc)
	defer func() {
		pace.remove(pc)
		sim.Close()
		go func() { // let the client's event goroutine finish if the call was hung up on
			for range sim.Events() {
			}
		}()
	}()

	var hold <-chan time.Time
	if lo.hold > 0 {
		t := time.NewTimer(lo.hold)
		defer t.Stop()
		hold = t.C
	}
	var toPrompt, keyedToPrompt []time.Duration
	var closed media.SimEvent
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			runErr = ctx.Err()
			break loop
		case <-hold:
			st.completed.Add(1)
			return
		case ev, ok := <-sim.Events():
			if !ok {
				break loop
			}
			if ev.Kind == media.SimAudio {
				st.received.Add(int64(len(ev.Audio) / media.FrameSamples))
			}
			before := len(drv.prompts)
			err := drv.handle(ev)
			if len(drv.prompts) > before { // a prompt began (its mark, or its opening frames)
				now := time.Now()
				if at := pc.lastDigit.Swap(0); at != 0 {
					toPrompt = append(toPrompt, now.Sub(time.Unix(0, at)))
				}
				if at := pc.lastKeyed.Swap(0); at != 0 {
					keyedToPrompt = append(keyedToPrompt, now.Sub(time.Unix(0, at)))
				}
			}
			if err != nil {
				runErr = err
				break loop
			}
			if ev.Kind == media.SimClosed {
				closed = ev
				break loop
			}
		}
	}
	st.completed.Add(1)
	st.mu.Lock()
	st.toPrompt = append(st.toPrompt, toPrompt...)
	st.keyedToPrompt = append(st.keyedToPrompt, keyedToPrompt...)
	st.mu.Unlock()
	switch {
	case runErr != nil:
		st.fail("stream: " + shortErr(runErr))
		return
	case lo.hold > 0:
		st.fail(fmt.Sprintf("stream closed before --hold: %d %s", closed.Code, closed.Reason))
		return
	case drv.outcome != "verified":
		out := drv.outcome
		if out == "" {
			out = fmt.Sprintf("none (closed %d %s)", closed.Code, closed.Reason)
		}
		st.fail("outcome " + out)
		return
	}
	if verdict != nil {
		select {
		case v := <-verdict:
			st.mu.Lock()
			if last := pc.finalDigit.Load(); last != 0 {
				st.toVerdict = append(st.toVerdict, v.read.Sub(time.Unix(0, last)))
			}
			if last := pc.finalKeyed.Load(); last != 0 {
				keyed := time.Unix(0, last)
				st.keyedToVerdict = append(st.keyedToVerdict, v.read.Sub(keyed))
				if !v.published.IsZero() {
					st.keyedToPub = append(st.keyedToPub, v.published.Sub(keyed))
					st.pubToRead = append(st.pubToRead, v.read.Sub(v.published))
				}
			}
			st.mu.Unlock()
		case <-time.After(5 * time.Second):
			st.fail("no verified message on the agent stream")
			return
		case <-ctx.Done():
			st.fail("no verified message on the agent stream")
			return
		}
	}
	st.verified.Add(1)
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.Index(s, "127.0.0.1:"); i >= 0 { // keep reasons groupable: drop ports
		if j := strings.IndexAny(s[i:], " ->"); j > 0 {
			s = s[:i] + "ADDR" + s[i+j:]
		}
	}
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// dialLoadTwilio places one call as `callproof call` does (dialPlatform), with the client set
// for load: no "media" events, so that the audio the server sends costs the caller no
// allocation; the driver knows Twilio's prompts by their marks.
func dialLoadTwilio(ctx context.Context, o callOptions, callID string) (*twilio.Client, error) {
	u, err := wsURL(o.server, twilio.StreamPath)
	if err != nil {
		return nil, err
	}
	cl, err := twilio.Dial(ctx, u, twilio.CallParams{
		CallSid: callID, StreamSid: "MZ" + callID[2:], AccountSid: "AC" + strings.Repeat("0", 32),
		From: o.from, To: o.to, Verstat: o.verstat, AuthToken: o.authToken,
	}, twilio.WithRealtimePlayback(true), twilio.WithAudio(false), twilio.WithEventBuffer(16))
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	return cl, nil
}

// pacedCall sits between the driver and the platform client: the driver's digits and tones
// are queued, and the pacer sends one 20 ms frame (silence, a tone, or the queued tones) every
// 20 ms on the call's own schedule, and a queued digit event every 100 ms.
type pacedCall struct {
	simCall
	received func() uint64 // samples the server sent, when the client counts them itself

	mu     sync.Mutex
	pcm    []int16 // queued in-band tones
	digits []byte  // queued digit events

	// The pacer's workers, under sendMu; remove sets stopped. owed counts the frames the
	// workers found due while another held sendMu: the holder sends them (see pace).
	sendMu   sync.Mutex
	owed     atomic.Int32
	stopped  atomic.Bool // set under sendMu
	tick     int         // frames sent
	inTone   int         // consecutive frames of tone sent
	counted  uint64      // frames received, as added to the run's count
	firstDue int64       // the pacer tick of the first frame; the others follow every ticksPerFrame

	// lastDigit is when the latest digit went out (unix nanos; the start of its tone in band),
	// cleared when the next prompt starts; finalDigit is the same time, kept to the end.
	// lastKeyed and finalKeyed are when that digit became recognisable: its event sent, or its
	// second frame of tone.
	lastDigit, finalDigit atomic.Int64
	lastKeyed, finalKeyed atomic.Int64
}

func newPacedCall(sim simCall, received func() uint64) *pacedCall {
	return &pacedCall{simCall: sim, received: received}
}

func (p *pacedCall) SendDTMF(d byte) error {
	p.mu.Lock()
	p.digits = append(p.digits, d)
	p.mu.Unlock()
	return nil
}

func (p *pacedCall) SendAudio(pcm []int16) error {
	p.mu.Lock()
	p.pcm = append(p.pcm, pcm...)
	p.mu.Unlock()
	return nil
}

// pace sends the call's frame that has come due, or, when another worker is still writing
// the call's previous frame (its thread preempted, or the socket slow), leaves it owed to
// that worker, which sends it next: a worker never waits for another. epoch is the pacer's,
// frame a worker's scratch, filler what goes out when nothing is queued.
func (p *pacedCall) pace(st *loadStats, epoch time.Time, frame, filler []int16) {
	p.owed.Add(1)
	for p.owed.Load() > 0 && p.sendMu.TryLock() { // after unlocking, look again: a frame owed meanwhile is ours
		for n := p.owed.Swap(0); n > 0 && p.sendLocked(st, epoch, frame, filler); n-- {
		}
		p.sendMu.Unlock()
	}
}

// sendLocked sends the call's next frame under sendMu. It reports false once the stream has
// closed.
func (p *pacedCall) sendLocked(st *loadStats, epoch time.Time, frame, filler []int16) bool {
	if p.stopped.Load() {
		return false
	}
	due := epoch.Add(time.Duration(p.firstDue+int64(p.tick)*int64(ticksPerFrame)) * pacerTick)
	now := time.Now()
	behind := now.Sub(due)
	if behind > 10*time.Millisecond {
		st.late.Add(1)
	}
	for b := st.behind.Load(); int64(behind) > b && !st.behind.CompareAndSwap(b, int64(behind)); b = st.behind.Load() {
	}
	p.tick++
	p.mu.Lock()
	var digit byte
	if p.tick%5 == 0 && len(p.digits) > 0 {
		digit = p.digits[0]
		p.digits = p.digits[1:]
	}
	out, queued := filler, false
	if len(p.pcm) > 0 {
		nn := copy(frame, p.pcm)
		clear(frame[nn:])
		p.pcm = p.pcm[nn:]
		out, queued = frame, true
	}
	p.mu.Unlock()
	// Digit times are noted before the frame goes out: the server may answer before this
	// goroutine runs again.
	switch {
	case !queued || isSilent(frame):
		p.inTone = 0
	case p.inTone == 0: // a key press starts: the latest one before the next prompt is the last digit
		p.inTone = 1
		p.keyed(&p.lastDigit, &p.finalDigit, now)
	default:
		if p.inTone++; p.inTone == 2 { // 40 ms of tone sent: recognisable from now on
			p.keyed(&p.lastKeyed, &p.finalKeyed, now)
		}
	}
	if err := p.simCall.SendAudio(out); err != nil {
		p.stopped.Store(true)
		return false
	}
	st.sent.Add(1)
	if digit != 0 {
		t := time.Now()
		p.keyed(&p.lastDigit, &p.finalDigit, t)
		p.keyed(&p.lastKeyed, &p.finalKeyed, t)
		if err := p.simCall.SendDTMF(digit); err != nil {
			p.stopped.Store(true)
			return false
		}
	}
	p.countReceived(st)
	return true
}

// countReceived adds the frames the client has received since the last count to the run's.
// It is called under sendMu.
func (p *pacedCall) countReceived(st *loadStats) {
	if p.received != nil {
		if n := p.received() / media.FrameSamples; n > p.counted {
			st.received.Add(int64(n - p.counted))
			p.counted = n
		}
	}
}

// keyed notes t in a pair of digit times: the latest before the next prompt, and the final.
func (p *pacedCall) keyed(last, final *atomic.Int64, t time.Time) {
	last.Store(t.UnixNano())
	final.Store(t.UnixNano())
}

// loadMemoryLimit is the callers' heap size at which their garbage collector starts (see
// quietGC): 2,000 calls hold about 150 MiB and add a few MiB a second.
const loadMemoryLimit = 4 << 30

// quietGC keeps the callers' garbage collector out of the measurement, unless GOGC or
// GOMEMLIMIT say otherwise: a collection's mark phase takes one of the two processors for
// 100 ms and more at 2,000 calls, and the pacers it delays send their frames late (the
// collections of the ramp were where a 2,000-call run's late frames came from). Collections
// start only when the heap reaches loadMemoryLimit. It returns the function that restores the
// previous settings.
func quietGC() func() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	percent := debug.SetGCPercent(-1)
	limit := debug.SetMemoryLimit(loadMemoryLimit)
	return func() {
		debug.SetMemoryLimit(limit)
		debug.SetGCPercent(percent)
	}
}

// pacerTick is the pacer's resolution: each call's frames go out on its own 20 ms schedule,
// rounded to this. A wake-up costs a context switch or two whatever it sends: at 1 ms, the
// eight goroutines pacing 2,000 calls woke 8,000 times a second, and at 2 ms both the
// callers (36–40 → 33–36 CPU s) and the server beside them (0.29–0.33 → 0.27–0.29 ms per
// call-second) used less, with fewer late frames (BENCHMARKS.md, session 4). Platforms'
// frames jitter by more than that.
const pacerTick = 2 * time.Millisecond

// ticksPerFrame is the number of pacer ticks in one frame: a call's slot in the wheel.
const ticksPerFrame = int(media.FrameDuration / pacerTick)

// pacer drives every call's 20 ms clock from a few goroutines instead of one timer per call.
// The calls sit in a wheel of ticksPerFrame slots, each in the slot of the moment it started,
// so calls keep the start times the ramp gave them and their frames stay spread over the
// 20 ms. Every pacerTick the slot whose time it is opens as a batch, and a frame goes out for
// each of its calls; a frame is late when it goes out more than 10 ms after its tick, exactly
// as with a clock per call. A pacer that falls behind opens the ticks it missed one after
// another, so lateness is counted, never skipped.
//
// Any of the pacer's workers opens the next tick when its time comes, and any of them sends
// any frame of the open batch, taking its calls one at a time. The workers wake pacerTick /
// workers apart. Before, each of eight shards had its own goroutine, timer and calls: when the
// kernel preempted the thread running a shard (for the server's threads, or the machine's own:
// scheduler traces of 2,000-call runs show 4–9 ms), that thread still held its Go processor,
// and nothing else could run the shard's goroutine or fire its timer, so its 250 calls' frames
// all went out late together. Now a preempted worker holds back only the one frame it is
// writing: the others open the ticks and send the frames it would have.
type pacer struct {
	st     *loadStats
	filler []int16
	epoch  time.Time
	trace  *lateTracer // --trace-late, or nil

	mu    sync.Mutex
	slots [ticksPerFrame][]*pacedCall
	calls int             // in all slots
	next  int64           // the next tick to open; every tick before it has been opened
	batch []*pacedCall    // the open tick's calls
	taken int             // how many of batch have been taken
	wake  []chan struct{} // one per worker: a call joined an empty pacer
}

// pacerWorkers sizes the pacer: at least one more than the processors, so that one preempted
// worker leaves others to run, and one per 500 calls (50 frames a tick to write), so that
// their writes overlap.
func pacerWorkers(calls int) int {
	return max(runtime.GOMAXPROCS(0)+1, min(calls/500, 64), 3)
}

func newPacer(st *loadStats, tone bool, calls int) *pacer {
	p := &pacer{st: st, filler: make([]int16, media.FrameSamples), epoch: time.Now()}
	if tone {
		for i := range p.filler { // 440 Hz at about -30 dBFS: a whole number of cycles per 20 ms frame
			p.filler[i] = int16(1000 * sinApprox(float64(i)*440/float64(media.SampleRate)))
		}
	}
	for range pacerWorkers(calls) {
		p.wake = append(p.wake, make(chan struct{}, 1))
	}
	return p
}

// run starts the workers; they stop when ctx ends.
func (p *pacer) run(ctx context.Context) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i, wake := range p.wake {
		offset := pacerTick * time.Duration(i) / time.Duration(len(p.wake))
		wg.Go(func() { p.work(ctx, offset, wake) })
	}
	return &wg
}

// add starts pacing c: its first frame goes out one frame from now.
func (p *pacer) add(c *pacedCall) {
	now := int64(time.Since(p.epoch) / pacerTick)
	p.mu.Lock()
	c.firstDue = max(now, p.next) + int64(ticksPerFrame)
	slot := c.firstDue % int64(ticksPerFrame)
	p.slots[slot] = append(p.slots[slot], c)
	p.calls++
	first := p.calls == 1
	p.mu.Unlock()
	if first {
		for _, w := range p.wake {
			select {
			case w <- struct{}{}:
			default:
			}
		}
	}
}

// remove stops pacing c; no frame is sent for it once remove returns.
func (p *pacer) remove(c *pacedCall) {
	c.sendMu.Lock()
	c.stopped.Store(true)
	c.countReceived(p.st)
	c.sendMu.Unlock()
}

// take returns the next call whose frame is due, opening the ticks whose time has come as
// the open one runs out. When nothing is due it returns nil and the time of the next tick with
// calls in it; the zero time when there are no calls.
func (p *pacer) take() (c *pacedCall, next time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.taken < len(p.batch) {
			c = p.batch[p.taken]
			p.taken++
			return c, time.Time{}
		}
		if p.calls == 0 {
			return nil, time.Time{}
		}
		k := p.next
		for i := 0; i < ticksPerFrame && len(p.slots[k%int64(ticksPerFrame)]) == 0; i++ {
			k++ // an empty slot is nobody's tick: skip it rather than wake for it
		}
		due := p.epoch.Add(time.Duration(k) * pacerTick)
		now := time.Now()
		if due.After(now) {
			return nil, due
		}
		if p.trace != nil {
			p.trace.woke(due, now)
		}
		p.open(k)
	}
}

// open makes tick k's calls the batch, dropping the calls that have stopped. It is called
// under mu, with the previous batch taken.
func (p *pacer) open(k int64) {
	slot := int(k % int64(ticksPerFrame))
	calls := p.slots[slot][:0]
	clear(p.batch)
	batch := p.batch[:0]
	for _, c := range p.slots[slot] {
		if c.stopped.Load() {
			continue
		}
		calls = append(calls, c)
		if c.firstDue <= k {
			batch = append(batch, c)
		}
	}
	clear(p.slots[slot][len(calls):])
	p.calls -= len(p.slots[slot]) - len(calls)
	p.slots[slot] = calls
	p.batch, p.taken, p.next = batch, 0, k+1
}

// work sends frames while any are due, then sleeps until offset after the next tick.
func (p *pacer) work(ctx context.Context, offset time.Duration, wake <-chan struct{}) {
	frame := make([]int16, media.FrameSamples) // scratch for a queued frame
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		c, due := p.take()
		if c != nil {
			c.pace(p.st, p.epoch, frame, p.filler)
			continue
		}
		if due.IsZero() { // no calls: wait for one rather than tick
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			continue
		}
		t.Reset(time.Until(due.Add(offset)))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func isSilent(pcm []int16) bool {
	for _, s := range pcm {
		if s > 64 || s < -64 {
			return false
		}
	}
	return true
}

// sinApprox is sin(2πx) from a Bhaskara-style approximation, good enough for a filler tone.
func sinApprox(x float64) float64 {
	x -= float64(int(x))
	sign := 1.0
	if x >= 0.5 {
		x -= 0.5
		sign = -1
	}
	d := x * 180 // degrees within [0, 90) * 2
	return sign * 4 * d * (180 - d) / (40500 - d*(180-d))
}

// serverSampler reads the server's CPU time and memory from /proc, its heap from /metrics and,
// with an admin URL, its live heap and stacks from pprof.
type serverSampler struct {
	pid               int
	metrics           string
	admin             string
	cpu0              float64
	idleRSS, idleHeap int64
	peakRSS, peakHeap int64
	samples           int
	client            *http.Client
	frames0, frames   serverFrames // from /metrics: at the start, and the latest
	hasFrames0        bool
	hasFrames         bool

	live                sync.Once
	liveDone            chan struct{}
	idleLive, idleStack int64
	liveHeap, liveStack int64
	liveCalls           int64
}

func newServerSampler(pid int, server, admin string) (*serverSampler, error) {
	cpu, err := procCPU(pid)
	if err != nil {
		return nil, fmt.Errorf("--pid: %w", err)
	}
	s := &serverSampler{pid: pid, cpu0: cpu, metrics: strings.TrimSuffix(server, "/") + "/metrics",
		admin: strings.TrimSuffix(admin, "/"), client: &http.Client{Timeout: 10 * time.Second,
			// Uncompressed: a gzip writer per scrape was half of what the once-a-second
			// /metrics cost the server (see BENCHMARKS.md).
			Transport: &http.Transport{DisableCompression: true}}}
	s.idleRSS, _ = procStatus(pid, "VmRSS:")
	s.idleHeap = s.scrape()
	s.frames0, s.hasFrames0 = s.frames, s.hasFrames
	if s.admin != "" {
		if s.idleLive, s.idleStack, err = s.liveMem(); err != nil {
			return nil, fmt.Errorf("--admin: %w", err)
		}
	}
	return s, nil
}

// liveMem forces a GC on the server and returns its heap (HeapAlloc, then all live) and the
// goroutine stacks in use, from the heap profile's text form.
func (s *serverSampler) liveMem() (heap, stack int64, err error) {
	resp, err := s.client.Get(s.admin + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("heap profile: HTTP %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			heap, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "# Stack = "); ok { // "# Stack = inuse / sys"
			stack, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	if heap == 0 {
		return 0, 0, errors.New("no HeapAlloc in the heap profile")
	}
	return heap, stack, sc.Err()
}

// sampleLive measures the live heap once, with calls active, without holding up the caller.
func (s *serverSampler) sampleLive(calls int64) {
	if s.admin == "" {
		return
	}
	s.live.Do(func() {
		s.liveDone = make(chan struct{})
		go func() {
			defer close(s.liveDone)
			if h, st, err := s.liveMem(); err == nil {
				s.liveHeap, s.liveStack, s.liveCalls = h, st, calls
			}
		}()
	})
}

// heapEvery is how many samples (seconds) apart the server's heap is read from /metrics. A
// scrape costs the server a few milliseconds of CPU (its process collector reads /proc,
// and every file descriptor, each time): once a second that was a tenth of a 200-call
// server's CPU, where Prometheus would scrape every 15 s or more.
const heapEvery = 5

// sample reads the server's RSS, and every heapEvery calls its heap in use (and on the
// last call, final).
func (s *serverSampler) sample(final bool) {
	if v, err := procStatus(s.pid, "VmRSS:"); err == nil && v > s.peakRSS {
		s.peakRSS = v
	}
	if s.samples++; s.samples%heapEvery != 1 && !final {
		return
	}
	if h := s.scrape(); h > s.peakHeap {
		s.peakHeap = h
	}
}

// scrape reads the server's /metrics: it returns the heap in use (0 when unknown) and
// keeps the late and dropped counters in s.frames.
func (s *serverSampler) scrape() int64 {
	resp, err := s.client.Get(s.metrics)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var heap int64
	var f serverFrames
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := metricSample(sc.Text())
		if !ok {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			heap = int64(v)
		case "callproof_frames_late_total":
			f.Late, found = int64(v), true
		case `callproof_dropped_total{what="event"}`:
			f.DroppedEvents = int64(v)
		case `callproof_dropped_total{what="prompt"}`:
			f.DroppedPrompts = int64(v)
		case `callproof_dropped_total{what="frame"}`:
			f.DroppedFrames = int64(v)
		}
	}
	if found && sc.Err() == nil {
		s.frames, s.hasFrames = f, true
	}
	return heap
}

// metricSample splits a line of the Prometheus text format into the sample's name with its
// labels and its value; comments and malformed lines are not samples.
func metricSample(line string) (name string, v float64, ok bool) {
	if line == "" || line[0] == '#' {
		return "", 0, false
	}
	i := strings.LastIndexByte(line, ' ')
	if i <= 0 {
		return "", 0, false
	}
	v, err := strconv.ParseFloat(line[i+1:], 64)
	if err != nil {
		return "", 0, false
	}
	return line[:i], v, true
}

func (s *serverSampler) finish(callSeconds float64, calls int64) *serverUsage {
	u := &serverUsage{PID: s.pid, PeakRSSRunBytes: s.peakRSS, PeakHeapBytes: s.peakHeap,
		IdleRSSBytes: s.idleRSS, IdleHeapInuseBytes: s.idleHeap}
	if cpu, err := procCPU(s.pid); err == nil {
		u.CPUSeconds = cpu - s.cpu0
	}
	if callSeconds > 0 {
		u.CPUPerCallSecond = u.CPUSeconds / callSeconds
	}
	u.PeakRSSBytes, _ = procStatus(s.pid, "VmHWM:")
	if s.hasFrames0 && s.hasFrames {
		u.Frames = &serverFrames{Late: s.frames.Late - s.frames0.Late,
			DroppedEvents:  s.frames.DroppedEvents - s.frames0.DroppedEvents,
			DroppedPrompts: s.frames.DroppedPrompts - s.frames0.DroppedPrompts,
			DroppedFrames:  s.frames.DroppedFrames - s.frames0.DroppedFrames}
	}
	if s.liveDone != nil {
		<-s.liveDone
		u.IdleLiveHeapBytes, u.IdleStackBytes = s.idleLive, s.idleStack
		u.LiveHeapBytes, u.StackBytes, u.LiveSampledCalls = s.liveHeap, s.liveStack, s.liveCalls
		if s.liveCalls > 0 {
			u.LiveHeapPerCallBytes = float64(s.liveHeap-s.idleLive) / float64(s.liveCalls)
			u.StackPerCallBytes = float64(s.liveStack-s.idleStack) / float64(s.liveCalls)
		}
	}
	if calls > 0 {
		u.RSSPerCallBytes = float64(s.peakRSS-s.idleRSS) / float64(calls)
		if s.peakHeap > 0 {
			u.HeapPerCallBytes = float64(s.peakHeap-s.idleHeap) / float64(calls)
		}
	}
	return u
}

// procCPU returns the process's user+system CPU seconds (/proc/PID/stat utime and stime, in
// clock ticks of 1/100 s, the Linux USER_HZ).
func procCPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')') // the command name may hold spaces
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 { // fields after ')' start at field 3 (state); utime is 14, stime 15
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	stt, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unreadable /proc stat times")
	}
	return float64(ut+stt) / 100, nil
}

// procStatus returns a kB field of /proc/PID/status in bytes.
func procStatus(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func summarize(ds []time.Duration) latencySummary {
	if len(ds) == 0 {
		return latencySummary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(p*float64(len(s))+0.5) - 1
		i = min(max(i, 0), len(s)-1)
		return float64(s[i]) / 1e6
	}
	return latencySummary{N: len(s), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: float64(s[len(s)-1]) / 1e6}
}

func printLoadReport(w io.Writer, r *loadReport) {
	fmt.Fprintf(w, "platform %s, dtmf %s, %d concurrent, %.1f s\n", r.Platform, r.DTMF, r.Concurrency, r.WallSeconds)
	fmt.Fprintf(w, "calls: started %d completed %d verified %d failed %d; peak concurrency %d; %.0f call-seconds\n",
		r.Started, r.Completed, r.Verified, r.Failed, r.PeakActive, r.CallSeconds)
	reasons := make([]string, 0, len(r.FailReasons))
	for k := range r.FailReasons {
		reasons = append(reasons, k)
	}
	slices.Sort(reasons)
	for _, k := range reasons {
		fmt.Fprintf(w, "  failed %d: %s\n", r.FailReasons[k], k)
	}
	fmt.Fprintf(w, "frames: sent %d received %d late %d (%.3f %%), at most %.1f ms behind\n", r.FramesSent, r.FramesReceived, r.FramesLate,
		100*float64(r.FramesLate)/float64(max(r.FramesSent, 1)), r.FramesBehindMaxMs)
	fmt.Fprintf(w, "callers' goroutines waiting to run (ms, %d sampled): p99 %.2f p99.9 %.2f max %.2f; %d waited 5 ms or more\n",
		r.CallerSched.Sampled, r.CallerSched.P99, r.CallerSched.P999, r.CallerSched.Max, r.CallerSched.Over5ms)
	for _, l := range []struct {
		name string
		s    latencySummary
	}{{"digit -> next prompt", r.DigitToPrompt}, {"last digit -> agent verified", r.DigitToVerified},
		{"digit recognisable -> next prompt", r.KeyedToPrompt}, {"last digit recognisable -> agent verified", r.KeyedToVerified},
		{"  of which recognisable -> server published", r.KeyedToPublished}, {"  and server published -> agent read", r.PublishedToRead}} {
		fmt.Fprintf(w, "%s (ms, n=%d): p50 %.1f p90 %.1f p99 %.1f max %.1f\n", l.name, l.s.N, l.s.P50, l.s.P90, l.s.P99, l.s.Max)
	}
	if r.AgentReader != "" {
		fmt.Fprintf(w, "agent stream read by the %s\n", r.AgentReader)
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "server pid %d: %.2f CPU s, %.4f CPU s per call-second; peak RSS %.1f MiB (VmHWM %.1f MiB, idle %.1f MiB, %.0f KiB per call)",
			s.PID, s.CPUSeconds, s.CPUPerCallSecond, float64(s.PeakRSSRunBytes)/(1<<20), float64(s.PeakRSSBytes)/(1<<20),
			float64(s.IdleRSSBytes)/(1<<20), s.RSSPerCallBytes/1024)
		if s.PeakHeapBytes > 0 {
			fmt.Fprintf(w, "; peak heap in use %.1f MiB (%.0f KiB per call)", float64(s.PeakHeapBytes)/(1<<20), s.HeapPerCallBytes/1024)
		}
		if s.LiveSampledCalls > 0 {
			fmt.Fprintf(w, "; after a forced GC with %d calls: live heap %.1f MiB (idle %.1f, %.0f KiB per call), stacks %.1f MiB (%.0f KiB per call)",
				s.LiveSampledCalls, float64(s.LiveHeapBytes)/(1<<20), float64(s.IdleLiveHeapBytes)/(1<<20), s.LiveHeapPerCallBytes/1024,
				float64(s.StackBytes)/(1<<20), s.StackPerCallBytes/1024)
		}
		fmt.Fprintln(w)
		if f := s.Frames; f != nil {
			fmt.Fprintf(w, "server frames: late %d; dropped: events %d, prompts %d, frames %d\n",
				f.Late, f.DroppedEvents, f.DroppedPrompts, f.DroppedFrames)
		}
	}
}

// serveNullRelay serves Twilio media streams that only read and write: each inbound media
// frame is echoed back; marks and digits are read and dropped; no flow, no detection. It is the floor against
// which BENCHMARKS.md states Callproof's overhead.
func serveNullRelay(ctx context.Context, addr string, batch int, stdout io.Writer) error {
	// The floor runs as the server does: its descriptor table grown before the calls come.
	if _, err := reserveDescriptors(serverDescriptors); err != nil {
		fmt.Fprintf(stdout, "null relay: descriptor table not grown in advance: %v\n", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "null relay on ws://%s%s\n", ln.Addr(), twilio.StreamPath)
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	var conns sync.WaitGroup
	mux := http.NewServeMux()
	mux.HandleFunc(twilio.StreamPath, func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		conns.Add(1)
		defer conns.Done()
		defer conn.Close()
		nullRelayConn(conn, batch)
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		select { // the relay has no calls worth draining: stop on the first signal
		case <-ctx.Done():
		case <-drainSignal(ctx):
		}
		srv.Close()
	}()
	err = srv.Serve(ln)
	conns.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func nullRelayConn(conn *websocket.Conn, batch int) {
	var m struct {
		Event     string `json:"event"`
		StreamSid string `json:"streamSid"`
		Media     *struct {
			Payload string `json:"payload"`
		} `json:"media"`
		Mark *struct {
			Name string `json:"name"`
		} `json:"mark"`
	}
	var buf, pending, enc []byte
	var frames int
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		m.Event, m.Media, m.Mark = "", nil, nil
		if json.Unmarshal(data, &m) != nil {
			return
		}
		switch m.Event {
		case "media":
			if m.Media == nil {
				continue
			}
			payload := m.Media.Payload
			if batch > 1 { // collect batch frames, then send them as one message
				raw, err := base64.StdEncoding.AppendDecode(pending, []byte(payload))
				if err != nil {
					return
				}
				pending, frames = raw, frames+1
				if frames < batch {
					continue
				}
				enc = base64.StdEncoding.AppendEncode(enc[:0], pending)
				payload, pending, frames = string(enc), pending[:0], 0
			}
			buf = append(buf[:0], `{"event":"media","streamSid":"`...)
			buf = append(buf, m.StreamSid...)
			buf = append(buf, `","media":{"payload":"`...)
			buf = append(buf, payload...)
			buf = append(buf, `"}}`...)
		case "stop":
			return
		default:
			continue
		}
		if err := conn.WriteMessage(websocket.TextMessage, buf); err != nil {
			return
		}
	}
}
