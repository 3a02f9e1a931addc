package vonage

import (
	"errors"
	"testing"

	"github.com/callproof/callproof/media/wsaudio"
)

// checkViolation fails unless err is a *wsaudio.Violation with a protocol close code.
func checkViolation(t *testing.T, err error) {
	t.Helper()
	var v *wsaudio.Violation
	if !errors.As(err, &v) {
		t.Fatalf("error %v is not a *wsaudio.Violation", err)
	}
	switch v.Code {
	case wsaudio.CloseInvalid, wsaudio.ClosePolicy:
	default:
		t.Fatalf("violation %q has close code %d", v.Reason, v.Code)
	}
	if len(v.Reason) == 0 {
		t.Fatal("violation without a reason")
	}
}

// FuzzStart: websocket:connected either parses into a sane Begin or is refused with a
// violation; it never panics.
func FuzzStart(f *testing.F) {
	f.Add([]byte(`{"event":"websocket:connected","content-type":"audio/l16;rate=16000","uuid":"x"}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		b, err := protocol{}.Start(msg)
		if err != nil {
			checkViolation(t, err)
			return
		}
		if b.Start == nil || !wsaudio.ValidRate(b.Rate) || !wsaudio.ValidID(b.Start.CallID) || len(b.Start.Params) > wsaudio.MaxParams {
			t.Fatalf("accepted %q as %+v", msg, b)
		}
		for k := range b.Start.Params {
			if reserved(k) {
				t.Fatalf("reserved header %q kept as a parameter", k)
			}
		}
	})
}

// FuzzControl: messages after websocket:connected parse or are refused with a violation.
func FuzzControl(f *testing.F) {
	f.Add([]byte(`{"event":"websocket:dtmf","digit":"5"}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, err := protocol{}.Control(msg)
		if err != nil {
			checkViolation(t, err)
			return
		}
		switch c.Kind {
		case wsaudio.ControlDigit:
			if _, ok := wsaudio.Digit(string(c.Digit)); !ok {
				t.Fatalf("accepted digit %q", c.Digit)
			}
		case wsaudio.ControlAck:
			if c.Ack == 0 {
				t.Fatal("acknowledgement of mark 0")
			}
		}
	})
}
