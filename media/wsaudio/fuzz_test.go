package wsaudio

import (
	"errors"
	"testing"

	"github.com/gorilla/websocket"
)

// FuzzAudio: any binary message, at either rate, with or without exact framing, is taken as
// audio or refused with a violation; the partial frame never exceeds one frame.
func FuzzAudio(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4}, true, false)
	f.Fuzz(func(t *testing.T, msg []byte, wide, exact bool) {
		rate := Rate8k
		if wide {
			rate = Rate16k
		}
		l := startedLeg(t, rate, exact)
		for range 3 {
			err := l.handle(websocket.BinaryMessage, msg)
			if err != nil {
				var v *Violation
				if !errors.As(err, &v) || v.Code != CloseInvalid {
					t.Fatalf("error %v", err)
				}
				if len(msg)%2 == 0 && (!exact || len(msg) == FrameBytes(rate)) {
					t.Fatalf("refused a valid message of %d bytes: %v", len(msg), err)
				}
				return
			}
			if len(l.acc) >= rate/50 {
				t.Fatalf("partial frame of %d samples", len(l.acc))
			}
		}
	})
}
