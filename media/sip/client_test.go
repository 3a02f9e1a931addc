package sip

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callproof/callproof/media"
)

func TestClientCallTransfer(t *testing.T) {
	prompt := toneClip(t, "welcome", 200*time.Millisecond, 440)
	rec := newRecord()
	srv := startServer(t, Config{AllowFrom: loopback, TransferURI: "sip:agents@127.0.0.1:5999"},
		recordFlow(rec, func(leg media.Leg, ev media.Event) bool {
			switch ev.Type {
			case media.EventStart:
				if err := leg.Play(prompt, "welcome"); err != nil {
					t.Errorf("play: %v", err)
				}
			case media.EventDTMF:
				if ev.Digit == '#' {
					leg.(interface{ SetHandoff(map[string]string) }).SetHandoff(map[string]string{HandoffToken: "tok.en-123"})
					_ = leg.Hangup("verified")
				}
			}
			return false
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := Dial(ctx, srv.Addr().String(), WithFrom("14155550100"), WithVerstat("TN-Validation-Passed"),
		WithHeader(DefaultRequestHeader, "delete"), WithPrompts([]*media.Clip{prompt}),
		WithClientLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var marks []string
	var closed *media.SimEvent
	for ev := range cl.Events() {
		switch ev.Kind {
		case media.SimMark:
			marks = append(marks, ev.Mark)
			for _, d := range []byte("12#") {
				if err := cl.SendDTMF(d); err != nil {
					t.Fatal(err)
				}
			}
		case media.SimClosed:
			closed = &ev
		}
	}
	rec.wait(t, 5*time.Second)
	if closed == nil || closed.Reason != "transferred" {
		t.Errorf("closed = %+v, want transferred", closed)
	}
	if got := cl.Token(); got != "tok.en-123" {
		t.Errorf("token = %q", got)
	}
	if len(marks) != 1 || marks[0] != "welcome" {
		t.Errorf("client marks = %v", marks)
	}
	if got := rec.Digits(); got != "12#" {
		t.Errorf("digits = %q, want 12#", got)
	}
	if rec.start.From != "+14155550100" || rec.start.Verstat != "TN-Validation-Passed" || rec.start.Param("request") != "delete" {
		t.Errorf("start = %+v", rec.start)
	}
	if !errors.Is(rec.err, media.ErrLegClosed) {
		t.Errorf("hangup err = %v", rec.err)
	}
	t.Logf("refer-to %s", cl.ReferTo())
}
