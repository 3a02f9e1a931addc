package audiosocket

import (
	"bufio"
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
)

// BenchmarkPacing measures the playout clock under load: 200 AudioSocket calls on loopback
// each play a 10 s prompt at once while their simulated Asterisk streams 20 ms of audio in,
// as a real one does. Each client timestamps every frame it receives; the benchmark reports
// the interval between consecutive frames of a call (p50, p99, p99.9, max, in ms), the worst
// drift of a call's last frame from its schedule (ms), and how many times a clock fell behind
// and restarted. It is a measurement, not an assertion; it takes about 11 s per iteration and
// is skipped under -short.
//
//	go test -run '^$' -bench Pacing -benchtime 1x ./media/audiosocket/
func BenchmarkPacing(b *testing.B) {
	if testing.Short() {
		b.Skip("BenchmarkPacing plays 200 calls of 10 s in real time; skipped under -short")
	}
	const (
		legs   = 200
		length = 10 * time.Second
		frames = int(length / media.FrameDuration)
	)
	clip := toneClip(b, "bench", length)
	for range b.N {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		var ready sync.WaitGroup
		ready.Add(legs)
		start := make(chan struct{})
		var late, marks uint64
		var mu sync.Mutex
		s := NewServer(Config{}, func(ctx context.Context, leg media.Leg) {
			ready.Done()
			<-start
			if err := leg.Play(clip, "bench"); err != nil {
				b.Error(err)
				return
			}
			for ev := range leg.Events() {
				if ev.Type == media.EventMark {
					mu.Lock()
					marks++
					late += leg.(*Leg).Stats().Late
					mu.Unlock()
					return
				}
			}
		}, zap.NewNop())
		served := make(chan error, 1)
		go func() { served <- s.Serve(context.Background(), ln) }()

		intervals := make([][]time.Duration, legs)
		drift := make([]time.Duration, legs)
		var clients sync.WaitGroup
		for i := range legs {
			clients.Add(1)
			go func() {
				defer clients.Done()
				intervals[i], drift[i] = benchClient(b, ln.Addr().String(), frames)
			}()
		}
		ready.Wait()
		b.ResetTimer()
		close(start)
		clients.Wait()
		b.StopTimer()
		_ = s.Close()
		if err := <-served; err != nil {
			b.Fatal(err)
		}

		var all []time.Duration
		for _, iv := range intervals {
			all = append(all, iv...)
		}
		if len(all) != legs*(frames-1) || marks != legs {
			b.Fatalf("got %d intervals and %d marks, want %d and %d", len(all), marks, legs*(frames-1), legs)
		}
		slices.Sort(all)
		pct := func(p float64) float64 {
			return float64(all[min(len(all)-1, int(p*float64(len(all))))]) / float64(time.Millisecond)
		}
		var worst time.Duration
		for _, d := range drift {
			worst = max(worst, d.Abs())
		}
		b.ReportMetric(pct(0.50), "p50_ms")
		b.ReportMetric(pct(0.99), "p99_ms")
		b.ReportMetric(pct(0.999), "p99.9_ms")
		b.ReportMetric(float64(all[len(all)-1])/float64(time.Millisecond), "max_ms")
		b.ReportMetric(float64(worst)/float64(time.Millisecond), "drift_ms")
		b.ReportMetric(float64(late), "restarts")
		b.ReportMetric(float64(legs), "legs")
	}
}

// benchClient plays Asterisk for one call: it streams silence in real time and timestamps the
// server's frames until the prompt is over, then hangs up. It returns the intervals between
// consecutive frames and how far the last frame landed from its schedule (first + n×20 ms).
func benchClient(b *testing.B, addr string, frames int) ([]time.Duration, time.Duration) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Error(err)
		return nil, 0
	}
	defer conn.Close()
	u := NewUUID()
	if _, err := conn.Write(frame(kindUUID, u[:])); err != nil {
		b.Error(err)
		return nil, 0
	}
	stop := make(chan struct{})
	var sender sync.WaitGroup
	sender.Add(1)
	go func() { // Asterisk's inbound stream
		defer sender.Done()
		silence := frame(kindSlin, make([]byte, frameBytes))
		t := time.NewTicker(media.FrameDuration)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if _, err := conn.Write(silence); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); sender.Wait() }()

	fr := frameReader{r: bufio.NewReader(conn)}
	at := make([]time.Time, 0, frames)
	for len(at) < frames {
		kind, _, err := fr.next()
		if err != nil {
			b.Errorf("after %d frames: %v", len(at), err)
			return nil, 0
		}
		if kind == kindSlin {
			at = append(at, time.Now())
		}
	}
	iv := make([]time.Duration, 0, frames-1)
	for i := 1; i < len(at); i++ {
		iv = append(iv, at[i].Sub(at[i-1]))
	}
	want := at[0].Add(time.Duration(frames-1) * media.FrameDuration)
	return iv, at[len(at)-1].Sub(want)
}
