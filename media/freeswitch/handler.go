package freeswitch

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsaudio"
)

// Leg is the media.Leg the handler gives the serve function; its Stats, Start and Rates
// methods serve metrics and tests.
type Leg = wsaudio.Leg

var _ media.Leg = (*Leg)(nil)

// NewHandler returns the handler for GET /v1/freeswitch: one mod_audio_fork WebSocket per
// request, each run as a media.Leg. For every stream whose metadata arrives, serve runs in the
// request's goroutine with the leg and a context cancelled when the stream ends; the handler
// returns once serve has returned and the leg's goroutines have finished. cfg should have
// passed Validate: an invalid config makes every request fail with 500. A nil log means
// zap.NewNop().
func NewHandler(cfg Config, serve func(ctx context.Context, leg media.Leg), log *zap.Logger) http.Handler {
	invalid := cfg.Validate()
	cfg = cfg.withDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	if invalid == nil && cfg.NewDetector == nil {
		log.Warn("freeswitch: no in-band DTMF detector configured; mod_audio_fork sends no digit events, so callers cannot key answers")
	}
	hc := wsaudio.HandlerConfig{
		Leg: wsaudio.Config{
			Transport:    "freeswitch",
			ReadLimit:    cfg.ReadLimit,
			StartTimeout: cfg.StartTimeout,
			DTMF:         cfg.DTMF,
			NewDetector:  cfg.NewDetector,
			Protocol:     protocol{defaultRate: cfg.SampleRate},
			Output: wsaudio.Output{
				Wire:  wire,
				Clear: killAudioMsg,
			},
			InvalidPlay: ErrInvalidPlay,
		},
		Subprotocol: cfg.Subprotocol,
		Invalid:     invalid,
	}
	if cfg.Username != "" {
		user, pass := cfg.Username, cfg.Password
		hc.Authorize = func(r *http.Request) error { return wsaudio.CheckBasic(r, user, pass) }
		hc.Realm = "callproof freeswitch"
	}
	return wsaudio.NewHandler(hc, serve, log)
}
