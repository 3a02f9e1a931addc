package jambonz

import (
	"errors"
	"testing"

	"github.com/callproof/callproof/media/wsaudio"
)

func checkViolation(t *testing.T, err error) {
	t.Helper()
	var v *wsaudio.Violation
	if !errors.As(err, &v) {
		t.Fatalf("error %v is not a *wsaudio.Violation", err)
	}
	if v.Code != wsaudio.CloseInvalid && v.Code != wsaudio.ClosePolicy || v.Reason == "" {
		t.Fatalf("violation %d %q", v.Code, v.Reason)
	}
}

// FuzzStart: the metadata either parses into a sane Begin or is refused with a violation.
func FuzzStart(f *testing.F) {
	f.Add([]byte(`{"callSid":"CS1","sampleRate":16000}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		b, err := protocol{}.Start(msg)
		if err != nil {
			checkViolation(t, err)
			return
		}
		if b.Start == nil || !wsaudio.ValidRate(b.Rate) || !wsaudio.ValidID(b.Start.CallID) {
			t.Fatalf("accepted %q as %+v", msg, b)
		}
		for k := range b.Start.Params {
			if !paramKeys[k] {
				t.Fatalf("kept parameter %q", k)
			}
		}
	})
}

// FuzzControl: messages after the metadata parse or are refused with a violation.
func FuzzControl(f *testing.F) {
	f.Add([]byte(`{"event":"dtmf","dtmf":"5"}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, err := protocol{}.Control(msg)
		if err != nil {
			checkViolation(t, err)
			return
		}
		if _, ok := wsaudio.Digit(string(c.Digit)); c.Kind != wsaudio.ControlDigit || !ok {
			t.Fatalf("accepted %q as %+v", msg, c)
		}
	})
}
