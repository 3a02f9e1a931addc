package vonage

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

// NewHandler returns the handler for GET /v1/vonage (and /v1/vonage/<token>): one Vonage
// WebSocket per request, each run as a media.Leg. For every stream whose websocket:connected
// arrives, serve runs in the request's goroutine with the leg and a context cancelled when the
// stream ends; the handler returns once serve has returned and the leg's goroutines have
// finished. cfg should have passed Validate: an invalid config makes every request fail with
// 500. A nil log means zap.NewNop().
func NewHandler(cfg Config, serve func(ctx context.Context, leg media.Leg), log *zap.Logger) http.Handler {
	invalid := cfg.Validate()
	cfg = cfg.withDefaults()
	hc := wsaudio.HandlerConfig{
		Leg: wsaudio.Config{
			Transport:    "vonage",
			ReadLimit:    cfg.ReadLimit,
			StartTimeout: cfg.StartTimeout,
			ExactFrames:  true,
			DTMF:         cfg.DTMF,
			NewDetector:  cfg.NewDetector,
			Protocol:     protocol{},
			Output: wsaudio.Output{
				Wire:    wire,
				Mark:    appendNotify,
				Clear:   clearMsg,
				MaxLead: cfg.MaxLead,
			},
			InvalidPlay: ErrInvalidPlay,
		},
		Invalid: invalid,
	}
	if tok := cfg.Token; tok != "" {
		hc.Authorize = func(r *http.Request) error { return wsaudio.CheckToken(r, tok) }
	}
	return wsaudio.NewHandler(hc, serve, log)
}
