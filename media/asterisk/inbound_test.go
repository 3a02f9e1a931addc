package asterisk

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

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

// TestInboundAudio checks that caller audio in every accepted format reaches the receiver as
// the 8 kHz PCM the client sent: exactly for slin, to G.711's precision for ulaw and alaw,
// and through the resampler for slin16.
func TestInboundAudio(t *testing.T) {
	in := tone(8000, 1000, 10*media.FrameSamples, 12000)
	for _, format := range []string{"ulaw", "alaw", "slin", "slin16"} {
		t.Run(format, func(t *testing.T) {
			sp := &spy{}
			s := newServer(t, Config{NewDetector: func() media.ToneDetector { return sp }})
			cl := dial(t, s.wsURL(), DialOptions{Format: format})
			leg := s.nextLeg(t)
			nextEvent(t, leg)
			if err := cl.SendAudio(in); err != nil {
				t.Fatal(err)
			}
			// The leg counts a frame before the detector is handed its samples: wait for the
			// samples themselves.
			for deadline := time.Now().Add(wait); len(sp.samples()) < len(in); {
				if time.Now().After(deadline) {
					t.Fatalf("audio did not arrive: %d frames, %d samples", leg.(*Leg).Stats().FramesIn, len(sp.samples()))
				}
				time.Sleep(time.Millisecond)
			}
			if n := leg.(*Leg).Stats().FramesIn; n != 10 {
				t.Fatalf("%d frames in, want 10", n)
			}
			got := sp.samples()
			if len(got) != len(in) {
				t.Fatalf("%d samples, want %d", len(got), len(in))
			}
			var want []int16
			switch format {
			case "ulaw":
				want = media.DecodeUlaw(make([]int16, len(in)), media.EncodeUlaw(make([]byte, len(in)), in))
			case "alaw":
				want = media.DecodeAlaw(make([]int16, len(in)), media.EncodeAlaw(make([]byte, len(in)), in))
			case "slin":
				want = in
			}
			if want != nil && !slices.Equal(got, want) {
				t.Fatal("received PCM differs from what was sent")
			}
			if format == "slin16" { // up in the client, down in the server: 15 samples of delay
				var sig, noise float64
				for i := 200; i < len(in)-100; i++ {
					e := float64(got[i+halfBandDelay/2]) - float64(in[i])
					sig += float64(in[i]) * float64(in[i])
					noise += e * e
				}
				if snr := 10 * math.Log10(sig/noise); snr < 40 {
					t.Fatalf("slin16 SNR %.1f dB", snr)
				}
			}
			_ = cl.Hangup()
			drainLeg(t, leg)
		})
	}
}

// TestInboundAllocs proves that taking a binary message of caller audio allocates nothing in
// the leg: decoding (and resampling) write into its buffers. (gorilla/websocket's NextReader
// itself allocates one small reader per message.)
func TestInboundAllocs(t *testing.T) {
	for _, format := range []string{"ulaw", "slin16"} {
		c := codecs[format]
		l := newLeg(nil, &Config{}, media.Start{}, zap.NewNop(), nil)
		ev := event{name: evMediaStart, connectionID: "c", format: format, frameSize: c.frameBytes()}
		if err := l.onStart(&ev, formatPlain); err != nil {
			t.Fatal(err)
		}
		<-l.Events()
		frame := make([]byte, c.frameBytes())
		if n := testing.AllocsPerRun(1000, func() {
			if err := l.handleBinary(frame); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %.1f allocations per frame", format, n)
		}
		if n := testing.AllocsPerRun(100, func() {
			if err := l.handleText([]byte("DTMF_END digit:1 channel_id:x")); err != nil {
				t.Fatal(err)
			}
		}); n > 8 {
			t.Errorf("%s: %.1f allocations per DTMF_END", format, n)
		}
		l.rx.Hangup(nil)
	}
}

// TestInbandDTMF checks that key presses sent as tones survive each 8 kHz format and the
// slin16 resampler well enough for the in-band detector (a DTMF_END for the same key press,
// within the receiver's de-duplication window, is not reported twice).
func TestInbandDTMF(t *testing.T) {
	for _, format := range []string{"ulaw", "slin16"} {
		t.Run(format, func(t *testing.T) {
			s := newServer(t, Config{NewDetector: func() media.ToneDetector { return dtmf.New(dtmf.Config{}) }})
			cl := dial(t, s.wsURL(), DialOptions{Format: format})
			leg := s.nextLeg(t)
			nextEvent(t, leg)
			if err := cl.SendAudio(dtmf.Tones("2580", dtmf.GenOptions{})); err != nil {
				t.Fatal(err)
			}
			for _, d := range []byte("2580") {
				if ev := nextEvent(t, leg); ev.Type != media.EventDTMF || ev.Digit != d || ev.Source != media.SourceInband {
					t.Fatalf("got %+v, want in-band digit %c", ev, d)
				}
			}
			if err := cl.SendDTMF('0'); err != nil { // the same key press, out of band: a duplicate
				t.Fatal(err)
			}
			_ = cl.Hangup()
			if ev := drainLeg(t, leg); ev.Type != media.EventHangup {
				t.Fatalf("got %+v, want the hangup", ev)
			}
		})
	}
}
