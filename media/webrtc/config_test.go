package webrtc

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/callproof/callproof/media"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		bad  string // substring of the error; "" for a valid config
	}{
		{"zero value", Config{}, ""},
		{"everything", Config{PortMin: 40000, PortMax: 40999, PublicIPs: []string{"203.0.113.7", "2001:db8::7"},
			ICEServers:   []string{"stun:stun.example.com:3478", "turn:turn.example.com:3478?transport=udp"},
			TURNUsername: "u", TURNCredential: "p", MediaTimeout: time.Second, OffersPerMinute: 30,
			MaxOfferBytes: 32 << 10, MaxCalls: 10}, ""},
		{"one port", Config{PortMin: 40000, PortMax: 40000}, ""},
		{"only min", Config{PortMin: 40000}, "set both ends"},
		{"only max", Config{PortMax: 40000}, "set both ends"},
		{"inverted range", Config{PortMin: 41000, PortMax: 40000}, "is empty"},
		{"bad public ip", Config{PublicIPs: []string{"example.com"}}, "not an IP"},
		{"unspecified public ip", Config{PublicIPs: []string{"0.0.0.0"}}, "not an IP"},
		{"bad ice url", Config{ICEServers: []string{"http://stun.example.com"}}, "ice server"},
		{"turn without credentials", Config{ICEServers: []string{"turn:turn.example.com"}}, "TURNUsername"},
		{"negative timeout", Config{MediaTimeout: -time.Second}, "negative"},
		{"tiny timeout", Config{MediaTimeout: 10 * time.Millisecond}, "below 100ms"},
		{"negative rate", Config{OffersPerMinute: -1}, "negative"},
		{"tiny offers", Config{MaxOfferBytes: 100}, "below 1 KiB"},
		{"huge offers", Config{MaxOfferBytes: 2 << 20}, "above 1 MiB"},
		{"negative calls", Config{MaxCalls: -1}, "negative"},
		{"inband without detector", Config{DTMF: media.DTMFInband}, "NewDetector"},
		{"unknown dtmf mode", Config{DTMF: 9}, "dtmf mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.bad == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.bad) {
				t.Fatalf("Validate: %v, want ErrConfig mentioning %q", err, tt.bad)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.MediaTimeout != 10*time.Second || c.OffersPerMinute != 10 || c.MaxOfferBytes != 64<<10 || c.MaxCalls != 500 {
		t.Errorf("defaults = %+v", c)
	}
}

func TestNewHandlerRefusesBadConfig(t *testing.T) {
	if _, err := NewHandler(Config{PortMin: 1}, nil, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("NewHandler: %v, want ErrConfig", err)
	}
}
