package main

import (
	"context"
	"math"
	"runtime"
	"time"
)

// Processor scaling (setting `processors: auto`, the default). Go's scheduler wakes an idle
// processor's thread whenever a goroutine becomes ready while a processor is idle, and a
// lightly loaded media server makes goroutines ready thousands of times a second. Where waking
// a thread on another CPU is dear (a virtual machine whose idle vCPUs halt: 46–55 µs a round
// trip between two processes on the benchmark machine, 2.1 µs on one CPU), those wake-ups
// were the largest cost of a few hundred calls. So the server runs on as few processors as its
// load needs, from one up to the GOMAXPROCS it started with: as soon as the last quarter
// second kept the processors in use busy past procsGrowAt, enough more to bring that under it
// (at least one more: a server short of processors cannot use more CPU than it has, so on a
// large machine a burst is met by a few steps, not one per processor); one fewer when the last
// five seconds would have fitted in one processor fewer under procsShrinkAt. The thresholds
// are low on purpose, to keep a processor's queue short: a first version that grew only past
// 70 % held 2,000 calls on one processor most of the run, with a p99 of `verified` of 13–19 ms
// (it also read every stream on one poller, since fixed); growing past 40 %, 6.4–7.7 ms.
const (
	procsTick        = 250 * time.Millisecond
	procsGrowAt      = 0.40
	procsShrinkAt    = 0.25
	procsShrinkTicks = 20 // five seconds of ticks
)

// procsStep decides the number of processors for the next tick from the current number, the
// most allowed, the CPU the process used in the last tick and its mean over the last
// procsShrinkTicks ticks at the current number (negative when there are not enough of them
// yet). CPU use is in CPUs: 1.5 is one and a half CPUs busy.
func procsStep(cur, most int, last, mean float64) int {
	switch {
	case cur < most && last > procsGrowAt*float64(cur):
		return min(most, max(cur+1, int(math.Ceil(last/procsGrowAt))))
	case cur > 1 && mean >= 0 && mean < procsShrinkAt*float64(cur-1):
		return cur - 1
	}
	return cur
}

// procScaler applies procsStep at every tick.
type procScaler struct {
	most  int
	set   func(n int) // runtime.GOMAXPROCS
	told  func(n int) // the new count, for the log; may be nil
	cur   int
	hist  [procsShrinkTicks]float64
	n     int // ticks at the current count
	cpu0  time.Duration
	wall0 time.Time
}

// start puts the process on one processor; cpu and wall are the CPU it has used so far and
// the time.
func (s *procScaler) start(cpu time.Duration, wall time.Time) {
	s.cur, s.n, s.cpu0, s.wall0 = 1, 0, cpu, wall
	s.apply(1)
}

// tick takes the CPU used so far at wall and changes the count if procsStep says so.
func (s *procScaler) tick(cpu time.Duration, wall time.Time) {
	if !wall.After(s.wall0) {
		return
	}
	last := float64(cpu-s.cpu0) / float64(wall.Sub(s.wall0))
	s.cpu0, s.wall0 = cpu, wall
	s.hist[s.n%procsShrinkTicks] = last
	s.n++
	mean := -1.0
	if s.n >= procsShrinkTicks {
		mean = 0
		for _, v := range s.hist {
			mean += v
		}
		mean /= procsShrinkTicks
	}
	if next := procsStep(s.cur, s.most, last, mean); next != s.cur {
		s.cur, s.n = next, 0 // the new count is judged on its own ticks
		s.apply(next)
	}
}

func (s *procScaler) apply(n int) {
	s.set(n)
	if s.told != nil {
		s.told(n)
	}
}

// scaleProcs scales the process between one processor and the GOMAXPROCS it has now, until
// ctx ends, then gives it all of them again (not told: the server is stopping); told hears
// each new count before that. With one processor allowed, or where the process's CPU time
// cannot be read, it leaves the count alone.
func scaleProcs(ctx context.Context, told func(n int)) {
	most := runtime.GOMAXPROCS(0)
	cpu, ok := processCPU()
	if most <= 1 || !ok {
		return
	}
	s := &procScaler{most: most, set: func(n int) { runtime.GOMAXPROCS(n) }, told: told}
	s.start(cpu, time.Now())
	defer runtime.GOMAXPROCS(most) // quietly: the server is stopping
	t := time.NewTicker(procsTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cpu, _ := processCPU()
		s.tick(cpu, time.Now())
	}
}
