package audiosocket

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/dtmf"
)

// spy is a ToneDetector that records the PCM the receiver is given.
type spy struct {
	mu  sync.Mutex
	pcm []int16
}

func (s *spy) Process(dst []byte, pcm []int16) []byte {
	s.mu.Lock()
	s.pcm = append(s.pcm, pcm...)
	s.mu.Unlock()
	return dst
}

func (s *spy) samples() []int16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pcm)
}

// TestRealtimeClient checks the simulated Asterisk's real-time mode: a 20 ms frame every 20 ms
// from the start of the call, silence when nothing is queued, and queued caller audio
// delivered whole and in order inside that stream.
func TestRealtimeClient(t *testing.T) {
	sp := &spy{}
	ts, legs := legServer(t, Config{NewDetector: func() media.ToneDetector { return sp }})
	began := time.Now()
	cl := dial(t, ts.addr, NewUUID(), WithRealtimeAudio(true))
	leg := nextLeg(t, legs)
	nextEvent(t, leg, wait)
	time.Sleep(200 * time.Millisecond)
	speech := make([]int16, 5*media.FrameSamples)
	for i := range speech {
		speech[i] = int16(1 + 9000*math.Sin(2*math.Pi*700*float64(i)/media.SampleRate)) // never 0
	}
	if err := cl.SendAudio(speech); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	elapsed := time.Since(began)
	_ = cl.Hangup()
	drainLeg(t, leg, wait)

	got := sp.samples()
	frames := len(got) / media.FrameSamples
	if want := int(elapsed / media.FrameDuration); frames < want-5 || frames > want+2 {
		t.Fatalf("%d frames in %s, want about %d", frames, elapsed, want)
	}
	i := slices.IndexFunc(got, func(s int16) bool { return s != 0 })
	if i < 0 || i%media.FrameSamples != 0 || !slices.Equal(got[i:i+len(speech)], speech) {
		t.Fatalf("speech not found whole at a frame boundary (first non-silent sample %d)", i)
	}
	if i < 5*media.FrameSamples {
		t.Fatalf("speech at frame %d, want it after the silence of the first 200 ms", i/media.FrameSamples)
	}
}

// TestInbandDTMF checks that an Asterisk build without the DTMF frame patch is served: the
// in-band detector finds the digits in the caller's audio, and in inband mode DTMF frames are
// not believed.
func TestInbandDTMF(t *testing.T) {
	ts, legs := legServer(t, Config{DTMF: media.DTMFInband,
		NewDetector: func() media.ToneDetector { return dtmf.New(dtmf.Config{}) }})
	cl := dial(t, ts.addr, NewUUID())
	leg := nextLeg(t, legs)
	nextEvent(t, leg, wait)
	if err := cl.SendDTMF('7'); err != nil { // ignored in inband mode
		t.Fatal(err)
	}
	if err := cl.SendAudio(dtmf.Tones("159#", dtmf.GenOptions{})); err != nil {
		t.Fatal(err)
	}
	for _, d := range []byte("159#") {
		if ev := nextEvent(t, leg, wait); ev.Type != media.EventDTMF || ev.Digit != d || ev.Source != media.SourceInband {
			t.Fatalf("got %+v, want in-band digit %c", ev, d)
		}
	}
	_ = cl.Hangup()
	if ev := drainLeg(t, leg, wait); ev.Type != media.EventHangup {
		t.Fatalf("got %+v after the digits, want the hangup", ev)
	}
}
