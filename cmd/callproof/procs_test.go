package main

import (
	"context"
	"io"
	"runtime"
	"slices"
	"testing"
	"time"
)

func TestProcsStep(t *testing.T) {
	for _, c := range []struct {
		name       string
		cur, most  int
		last, mean float64
		want       int
	}{
		{"idle on one stays", 1, 2, 0.05, 0.05, 1},
		{"one kept 40 % busy stays", 1, 2, 0.40, 0.40, 1},
		{"one past 40 % grows", 1, 2, 0.41, 0.1, 2},
		{"never past most", 2, 2, 1.9, 1.9, 2},
		{"two lightly used: stays while the mean would crowd one", 2, 2, 0.3, 0.30, 2},
		{"two whose load fits one comfortably shrinks", 2, 2, 0.2, 0.24, 1},
		{"no shrinking without five seconds of history", 2, 2, 0.0, -1, 2},
		{"four busy past 40 % of four grows to what keeps them under", 4, 8, 1.7, 1.5, 5},
		{"one saturated on a large machine takes three", 1, 16, 0.98, 0.5, 3},
		{"four saturated takes ten", 4, 16, 3.9, 3.0, 10},
		{"but never more than most", 4, 8, 3.9, 3.0, 8},
		{"four whose load would crowd three stays", 4, 8, 0.8, 0.80, 4},
		{"four whose load fits three comfortably shrinks", 4, 8, 0.6, 0.70, 3},
		{"four nearly idle shrinks by one at a time", 4, 8, 0.0, 0.0, 3},
		{"growing wins over shrinking", 2, 4, 0.9, 0.1, 3},
		{"one is the floor", 1, 4, 0.0, 0.0, 1},
	} {
		if got := procsStep(c.cur, c.most, c.last, c.mean); got != c.want {
			t.Errorf("%s: procsStep(%d, %d, %.2f, %.2f) = %d, want %d", c.name, c.cur, c.most, c.last, c.mean, got, c.want)
		}
	}
}

// The scaler through a day in a small call center, on a fake clock and CPU counter: it
// starts on one processor, takes a second at the first busy tick, never goes past the most
// allowed, and gives the second back once the last five seconds would have kept one under a
// quarter busy.
func TestProcScaler(t *testing.T) {
	var sets, told []int
	s := &procScaler{most: 2, set: func(n int) { sets = append(sets, n) }, told: func(n int) { told = append(told, n) }}
	f := startFakeScaler(s)
	step := f.step
	check := func(when string, want ...int) {
		t.Helper()
		if !slices.Equal(sets, want) || !slices.Equal(told, want) {
			t.Fatalf("%s: processors set to %v, told %v, want %v", when, sets, told, want)
		}
	}
	for range 40 { // 200 calls: a tenth of a CPU
		step(0.1)
	}
	s.tick(f.cpu+time.Second, f.now) // no time has passed: nothing to judge
	check("light load", 1)
	step(0.6) // the ramp of a busy hour
	check("after a busy tick", 1, 2)
	for range 3 * procsShrinkTicks { // 2,000 calls: two thirds of a CPU
		step(0.65)
	}
	step(2.0)
	for range procsShrinkTicks {
		step(0.65)
	}
	check("under load", 1, 2)
	// The hour ends. After k quiet ticks the five seconds' mean is (0.65(20-k) + 0.02k)/20,
	// under 0.25 from k = 13.
	for range 12 {
		step(0.02)
	}
	check("twelve quiet ticks", 1, 2)
	step(0.02)
	check("thirteen quiet ticks", 1, 2, 1)
	step(0.05)
	check("quiet on one", 1, 2, 1)
}

// processCPU reads the process's real CPU time: it advances while the process computes.
func TestProcessCPU(t *testing.T) {
	start, ok := processCPU()
	if !ok {
		t.Fatal("processCPU: no CPU time on this system")
	}
	x := 1.0
	for i := 0; ; i++ {
		x = x*1.0000001 + 1e-9
		if i%1_000_000 != 0 {
			continue
		}
		if d, _ := processCPU(); d-start >= 20*time.Millisecond {
			break
		}
		if i > 1e10 {
			t.Fatalf("CPU time did not advance (%v)", x)
		}
	}
}

// The server started with processors: auto starts on one processor and gives the process
// back all its processors when it stops; "all" leaves them alone; anything else is refused.
func TestProcessorsSetting(t *testing.T) {
	if _, err := parseServerFlags(true, []string{"--processors", "some"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("processors: some accepted")
	}
	cfg, err := parseServerFlags(true, nil, func(k string) string {
		return map[string]string{"CALLPROOF_PROCESSORS": "all"}[k]
	}, io.Discard)
	if err != nil || cfg.Processors != "all" {
		t.Fatalf("CALLPROOF_PROCESSORS=all: %q %v", cfg.Processors, err)
	}
	cfg, err = parseServerFlags(true, nil, func(string) string { return "" }, io.Discard)
	if err != nil || cfg.Processors != "auto" {
		t.Fatalf("default: %q %v", cfg.Processors, err)
	}
	if runtime.NumCPU() < 2 {
		return
	}
	before := runtime.GOMAXPROCS(0)
	ctx, cancel := context.WithCancel(context.Background())
	var ins []int
	done := make(chan struct{})
	go func() { defer close(done); scaleProcs(ctx, func(n int) { ins = append(ins, n) }) }()
	for runtime.GOMAXPROCS(0) != 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if got := runtime.GOMAXPROCS(0); got != before || len(ins) == 0 || ins[0] != 1 {
		t.Fatalf("GOMAXPROCS %d after the scaler stopped (was %d), counts told %v", got, before, ins)
	}
}

// On a large machine a burst that saturates the processors in use is met in a few ticks, and
// the quiet after it gives them back one at a time.
func TestProcScalerLargeMachine(t *testing.T) {
	var sets []int
	step := startFakeScaler(&procScaler{most: 16, set: func(n int) { sets = append(sets, n) }}).step
	step(1.0) // one processor, saturated
	step(3.0) // three, saturated
	step(8.0) // eight, saturated
	if want := []int{1, 3, 8, 16}; !slices.Equal(sets, want) {
		t.Fatalf("burst: processors set to %v, want %v", sets, want)
	}
	for range procsShrinkTicks * 3 {
		step(0)
	}
	if want := []int{1, 3, 8, 16, 15, 14, 13}; !slices.Equal(sets, want) {
		t.Fatalf("quiet: processors set to %v, want %v", sets, want)
	}
}

// fakeScaler drives a procScaler on a fake clock and CPU counter.
type fakeScaler struct {
	s   *procScaler
	now time.Time
	cpu time.Duration
}

func startFakeScaler(s *procScaler) *fakeScaler {
	f := &fakeScaler{s: s, now: time.Unix(1_700_000_000, 0)}
	s.start(f.cpu, f.now)
	return f
}

// step is one tick with this many CPUs busy.
func (f *fakeScaler) step(busy float64) {
	f.now = f.now.Add(procsTick)
	f.cpu += time.Duration(busy * float64(procsTick))
	f.s.tick(f.cpu, f.now)
}
