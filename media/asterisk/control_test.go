package asterisk

import (
	"errors"
	"strings"
	"testing"
)

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name   string
		msg    string
		want   event
		format ctlFormat
		code   int // 0: valid
	}{
		{"media start plain", "MEDIA_START connection_id:e226e283 channel:WebSocket/connection1/0x5140001a0040 channel_id:pbx1-1761245643.1 format:ulaw optimal_frame_size:160 ptime:20",
			event{name: evMediaStart, connectionID: "e226e283", channel: "WebSocket/connection1/0x5140001a0040", channelID: "pbx1-1761245643.1", format: "ulaw", frameSize: 160, ptime: 20}, formatPlain, 0},
		{"media start minimal", "MEDIA_START connection_id:c1 channel:WebSocket/c1 format:slin16 optimal_frame_size:640",
			event{name: evMediaStart, connectionID: "c1", channel: "WebSocket/c1", format: "slin16", frameSize: 640}, formatPlain, 0},
		{"media start future fields", "MEDIA_START connection_id:c1 format:ulaw optimal_frame_size:160 passthrough:false unbuffered:false",
			event{name: evMediaStart, connectionID: "c1", format: "ulaw", frameSize: 160}, formatPlain, 0},
		{"media start passthrough", "MEDIA_START connection_id:c1 format:ulaw optimal_frame_size:160 passthrough:true",
			event{name: evMediaStart, connectionID: "c1", format: "ulaw", frameSize: 160, passthrough: true}, formatPlain, 0},
		{"trailing newline", "MEDIA_XON\r\n", event{name: evXON}, formatPlain, 0},
		{"dtmf", "DTMF_END digit:5 channel_id:pbx1-1.1", event{name: evDTMFEnd, digit: '5', channelID: "pbx1-1.1"}, formatPlain, 0},
		{"dtmf hash", "DTMF_END digit:#", event{name: evDTMFEnd, digit: '#'}, formatPlain, 0},
		{"xoff", "MEDIA_XOFF", event{name: evXOFF}, formatPlain, 0},
		{"completed bare", "MEDIA_BUFFERING_COMPLETED", event{name: evBufferingEnd}, formatPlain, 0},
		{"completed id", "MEDIA_BUFFERING_COMPLETED 17", event{name: evBufferingEnd, id: "17"}, formatPlain, 0},
		{"drained", "QUEUE_DRAINED", event{name: evQueueDrained}, formatPlain, 0},
		{"status", "STATUS channel_id:x queue_length:43 xon_level:800 xoff_level:900 queue_full:false bulk_media:true media_paused:false", event{name: evStatus}, formatPlain, 0},
		{"error", "ERROR channel_id:x error_text:FLUSH_MEDIA not supported in passthrough mode", event{name: evError, errText: "FLUSH_MEDIA not supported in passthrough mode"}, formatPlain, 0},
		{"json start", `{"event":"MEDIA_START","connection_id":"c1","channel":"WebSocket/c1/0x1","channel_id":"1.1","format":"alaw","optimal_frame_size":160,"ptime":20,"channel_variables":{"CALLPROOF_FROM":"+14155550100","N":5}}`,
			event{name: evMediaStart, connectionID: "c1", channel: "WebSocket/c1/0x1", channelID: "1.1", format: "alaw", frameSize: 160, ptime: 20, vars: map[string]string{"CALLPROOF_FROM": "+14155550100"}}, formatJSON, 0},
		{"json dtmf", `{"event":"DTMF_END","channel_id":"1.1","digit":"9"}`, event{name: evDTMFEnd, channelID: "1.1", digit: '9'}, formatJSON, 0},
		{"json completed", `{"event":"MEDIA_BUFFERING_COMPLETED","channel_id":"1.1","correlation_id":"3"}`, event{name: evBufferingEnd, id: "3"}, formatJSON, 0},
		{"json pretty", "{\n  \"event\": \"MEDIA_XOFF\",\n  \"channel_id\": \"1.1\"\n}", event{name: evXOFF}, formatJSON, 0},

		{"empty", "   ", event{}, 0, closeInvalid},
		{"lower case", "media_start connection_id:x", event{}, 0, closeInvalid},
		{"unknown", "MEDIA_STOP", event{}, 0, closePolicy},
		{"json unknown", `{"event":"BARGE"}`, event{}, 0, closePolicy},
		{"no connection id", "MEDIA_START format:ulaw optimal_frame_size:160", event{}, 0, closeInvalid},
		{"no format", "MEDIA_START connection_id:x optimal_frame_size:160", event{}, 0, closeInvalid},
		{"bare token", "MEDIA_START connection_id:x format:ulaw garbage", event{}, 0, closeInvalid},
		{"repeated key", "MEDIA_START connection_id:x connection_id:y format:ulaw", event{}, 0, closeInvalid},
		{"bad number", "MEDIA_START connection_id:x format:ulaw optimal_frame_size:lots", event{}, 0, closeInvalid},
		{"negative number", "MEDIA_START connection_id:x format:ulaw optimal_frame_size:-160", event{}, 0, closeInvalid},
		{"bad passthrough", "MEDIA_START connection_id:x format:ulaw passthrough:maybe", event{}, 0, closeInvalid},
		{"dtmf no digit", "DTMF_END channel_id:x", event{}, 0, closeInvalid},
		{"dtmf bad digit", "DTMF_END digit:55", event{}, 0, closeInvalid},
		{"two ids", "MEDIA_BUFFERING_COMPLETED 1 2", event{}, 0, closeInvalid},
		{"json broken", `{"event":"MEDIA_XON"`, event{}, 0, closeInvalid},
		{"json array", `[1]`, event{}, 0, closeInvalid},
		{"json no event", `{"channel_id":"1"}`, event{}, 0, closeInvalid},
		{"json bad digit", `{"event":"DTMF_END","digit":""}`, event{}, 0, closeInvalid},
		{"json bad number", `{"event":"MEDIA_START","connection_id":"c","format":"ulaw","optimal_frame_size":70000}`, event{}, 0, closeInvalid},
		{"json wrong type", `{"event":"MEDIA_START","connection_id":5}`, event{}, 0, closeInvalid},
		{"invalid utf8", "MEDIA_XON \xff", event{}, 0, closeInvalid},
		{"overlong id", "MEDIA_START connection_id:" + strings.Repeat("x", 200) + " format:ulaw", event{}, 0, closeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, f, err := parseEvent([]byte(tt.msg))
			if tt.code != 0 {
				var v *protoError
				if !errors.As(err, &v) || v.code != tt.code {
					t.Fatalf("got %+v, %v; want a %d protocol error", ev, err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if f != tt.format || ev.name != tt.want.name || ev.connectionID != tt.want.connectionID ||
				ev.channel != tt.want.channel || ev.channelID != tt.want.channelID || ev.format != tt.want.format ||
				ev.frameSize != tt.want.frameSize || ev.ptime != tt.want.ptime || ev.passthrough != tt.want.passthrough ||
				ev.digit != tt.want.digit || ev.id != tt.want.id || ev.errText != tt.want.errText || len(ev.vars) != len(tt.want.vars) {
				t.Fatalf("got %+v (format %d)\nwant %+v (format %d)", ev, f, tt.want, tt.format)
			}
			for k, v := range tt.want.vars {
				if ev.vars[k] != v {
					t.Fatalf("var %s = %q, want %q", k, ev.vars[k], v)
				}
			}
		})
	}
}

func TestAppendCommand(t *testing.T) {
	tests := []struct {
		f       ctlFormat
		cmd, id string
		want    string
	}{
		{formatPlain, cmdStartBuffering, "", "START_MEDIA_BUFFERING"},
		{formatPlain, cmdStopBuffering, "12", "STOP_MEDIA_BUFFERING 12"},
		{formatJSON, cmdFlush, "", `{"command":"FLUSH_MEDIA"}`},
		{formatJSON, cmdStopBuffering, "12", `{"command":"STOP_MEDIA_BUFFERING","correlation_id":"12"}`},
	}
	for _, tt := range tests {
		if got := string(appendCommand(nil, tt.f, tt.cmd, tt.id)); got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
	}
	// Asterisk drops control messages over 128 bytes without a word.
	if n := len(appendCommand(nil, formatJSON, cmdStopBuffering, "18446744073709551615")); n > maxCommand {
		t.Fatalf("longest command is %d bytes", n)
	}
}

// FuzzControl feeds arbitrary text to the control message parser, as a broken or hostile
// peer would. It must never panic, must return only *protoError, and what it accepts must be
// consistent: a known event name, a valid digit for DTMF_END, the required MEDIA_START fields.
func FuzzControl(f *testing.F) {
	for _, s := range []string{
		"MEDIA_START connection_id:c1 channel:WebSocket/c1/0x1 channel_id:1.1 format:ulaw optimal_frame_size:160 ptime:20",
		"DTMF_END digit:5 channel_id:1.1",
		"MEDIA_BUFFERING_COMPLETED 3",
		"MEDIA_XOFF",
		"ERROR channel_id:1 error_text:bad thing: happened",
		`{"event":"MEDIA_START","connection_id":"c","format":"slin16","optimal_frame_size":640,"channel_variables":{"CALLPROOF_FROM":"+1"}}`,
		`{"event":"DTMF_END","digit":"#"}`,
		"STATUS queue_length:1",
		"MEDIA_START connection_id:: format::",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, fm, err := parseEvent(data)
		if err != nil {
			var v *protoError
			if !errors.As(err, &v) || v.code < 1000 || v.code > 1011 {
				t.Fatalf("error %T %v is not a protocol error with a close code", err, err)
			}
			return
		}
		if fm != formatPlain && fm != formatJSON {
			t.Fatalf("format %d", fm)
		}
		switch ev.name {
		case evMediaStart:
			if ev.connectionID == "" || ev.format == "" || ev.frameSize < 0 || ev.frameSize > 65535 {
				t.Fatalf("accepted MEDIA_START %+v", ev)
			}
		case evDTMFEnd:
			if !strings.ContainsRune("0123456789*#ABCD", rune(ev.digit)) || ev.digit == 0 {
				t.Fatalf("accepted digit %q", ev.digit)
			}
		case evXOFF, evXON, evBufferingEnd, evMarkDone, evQueueDrained, evStatus, evError:
		default:
			t.Fatalf("accepted unknown event %q", ev.name)
		}
	})
}
