package webrtc

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestPionLogs(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := pionLogs{z: zap.New(core).Named("pion")}.NewLogger("ice")
	l.Trace("t")
	l.Debugf("d %d", 1)
	l.Info("state changed")
	l.Warn("Failed to accept RTP stream is already closed")
	l.Warnf("Failed to ping without candidate pairs. Connection is not possible yet.")
	l.Warnf("odd %s", "thing")
	l.Errorf("broken %d", 2)
	want := []struct {
		lvl zapcore.Level
		msg string
	}{
		{zapcore.DebugLevel, "t"},
		{zapcore.DebugLevel, "d 1"},
		{zapcore.DebugLevel, "state changed"},
		{zapcore.DebugLevel, "Failed to accept RTP stream is already closed"},
		{zapcore.DebugLevel, "Failed to ping without candidate pairs. Connection is not possible yet."},
		{zapcore.WarnLevel, "odd thing"},
		{zapcore.ErrorLevel, "broken 2"},
	}
	got := logs.All()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Level != w.lvl || got[i].Message != w.msg || got[i].LoggerName != "pion.ice" {
			t.Errorf("entry %d = %s %s %q, want %s pion.ice %q", i, got[i].Level, got[i].LoggerName, got[i].Message, w.lvl, w.msg)
		}
	}

	// Formatting is skipped when nothing is enabled.
	quiet := pionLogs{z: zap.New(zapcore.NewNopCore())}.NewLogger("dtls")
	var formatted int
	quiet.Debugf("%s", spy{&formatted})
	quiet.Warnf("%s", spy{&formatted})
	if formatted != 0 {
		t.Errorf("disabled messages were formatted %d times", formatted)
	}
}

type spy struct{ n *int }

func (s spy) String() string { *s.n++; return "spy" }
