package freeswitch

import (
	"errors"
	"testing"

	"github.com/callproof/callproof/media/wsaudio"
)

// FuzzStart: the metadata either parses into a sane Begin or is refused with a violation.
func FuzzStart(f *testing.F) {
	f.Add([]byte(`{"uuid":"x","sampleRate":"16k"}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		b, err := protocol{defaultRate: 8000}.Start(msg)
		if err != nil {
			var v *wsaudio.Violation
			if !errors.As(err, &v) || v.Code != wsaudio.CloseInvalid && v.Code != wsaudio.ClosePolicy {
				t.Fatalf("error %v", err)
			}
			return
		}
		if b.Start == nil || !wsaudio.ValidRate(b.Rate) || b.PlayRate != playRate || !wsaudio.ValidID(b.Start.CallID) || len(b.Start.Params) > wsaudio.MaxParams {
			t.Fatalf("accepted %q as %+v", msg, b)
		}
		for k := range b.Start.Params {
			if consumed(k) {
				t.Fatalf("member %q kept as a parameter", k)
			}
		}
	})
}
