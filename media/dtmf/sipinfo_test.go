package dtmf

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseSIPInfo(t *testing.T) {
	tests := []struct {
		name, ct, body string
		digit          byte
		dur            time.Duration
		bad            bool
	}{
		{name: "relay", ct: "application/dtmf-relay", body: "Signal=5\r\nDuration=160\r\n", digit: '5', dur: 160 * time.Millisecond},
		{name: "relay LF, spaces, case", ct: "Application/DTMF-Relay", body: " signal = # \n DURATION= 250 \n", digit: '#', dur: 250 * time.Millisecond},
		{name: "relay without duration", ct: "application/dtmf-relay", body: "Signal=*", digit: '*'},
		{name: "relay lower-case letter", ct: "application/dtmf-relay", body: "Signal=b\r\nDuration=100", digit: 'B', dur: 100 * time.Millisecond},
		{name: "relay event code for star", ct: "application/dtmf-relay", body: "Signal=10\r\nDuration=100", digit: '*', dur: 100 * time.Millisecond},
		{name: "relay event code for D", ct: "application/dtmf-relay", body: "Signal=15", digit: 'D'},
		{name: "relay unknown line ignored", ct: "application/dtmf-relay; charset=utf-8", body: "Signal=0\r\nVolume=10\r\nDuration=90\r\n\r\n", digit: '0', dur: 90 * time.Millisecond},
		{name: "dtmf", ct: "application/dtmf", body: "7", digit: '7'},
		{name: "dtmf with newline", ct: "application/dtmf", body: " 9\r\n", digit: '9'},
		{name: "dtmf event code", ct: "application/dtmf", body: "11", digit: '#'},
		{name: "wrong type", ct: "text/plain", body: "Signal=5", bad: true},
		{name: "sdp", ct: "application/sdp", body: "v=0", bad: true},
		{name: "bad content type", ct: "application/", body: "5", bad: true},
		{name: "relay no signal", ct: "application/dtmf-relay", body: "Duration=100", bad: true},
		{name: "relay bad signal", ct: "application/dtmf-relay", body: "Signal=55", bad: true},
		{name: "relay flash", ct: "application/dtmf-relay", body: "Signal=16", bad: true},
		{name: "relay signal x", ct: "application/dtmf-relay", body: "Signal=x", bad: true},
		{name: "relay empty signal", ct: "application/dtmf-relay", body: "Signal=", bad: true},
		{name: "relay two signals", ct: "application/dtmf-relay", body: "Signal=1\nSignal=2", bad: true},
		{name: "relay bad duration", ct: "application/dtmf-relay", body: "Signal=1\nDuration=abc", bad: true},
		{name: "relay negative duration", ct: "application/dtmf-relay", body: "Signal=1\nDuration=-5", bad: true},
		{name: "relay garbage line", ct: "application/dtmf-relay", body: "Signal=1\nhello", bad: true},
		{name: "dtmf two digits", ct: "application/dtmf", body: "1 2", bad: true},
		{name: "dtmf three digits", ct: "application/dtmf", body: "123", bad: true},
		{name: "dtmf empty", ct: "application/dtmf", body: "", bad: true},
		{name: "huge body", ct: "application/dtmf-relay", body: "Signal=1\n" + strings.Repeat(" ", 2000), bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, dur, err := ParseSIPInfo(tt.ct, []byte(tt.body))
			if tt.bad {
				if !errors.Is(err, ErrSIPInfo) {
					t.Fatalf("err = %v, want ErrSIPInfo", err)
				}
				return
			}
			if err != nil || d != tt.digit || dur != tt.dur {
				t.Fatalf("got %q %v %v, want %q %v", d, dur, err, tt.digit, tt.dur)
			}
		})
	}
}

// The digit is a caller's answer: errors must never echo it.
func TestParseSIPInfoErrorsHideDigits(t *testing.T) {
	for _, body := range []string{"Signal=7\nDuration=x", "Signal=7\nSignal=7", "Signal=77"} {
		_, _, err := ParseSIPInfo("application/dtmf-relay", []byte(body))
		if err == nil || strings.Contains(err.Error(), "7") {
			t.Fatalf("error %q for %q", err, body)
		}
	}
	_, _, err := ParseSIPInfo("application/dtmf", []byte("78"))
	if err == nil || strings.ContainsAny(err.Error(), "78") {
		t.Fatalf("error %q", err)
	}
}
