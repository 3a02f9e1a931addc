package telnyx

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsjson"
)

// StreamPath is the WebSocket path Telnyx streams to (stream_url wss://<host>/v1/telnyx).
const StreamPath = "/v1/telnyx"

// TokenHeader is the upgrade header in which Telnyx presents the stream_auth_token of
// streaming_start (the Media Streaming AsyncAPI: "sends it as the
// x-telnyx-streaming-auth-token WebSocket header"; the connected frame repeats it).
const TokenHeader = "X-Telnyx-Streaming-Auth-Token"

// Defaults.
const (
	DefaultReadLimit    = wsjson.DefaultReadLimit
	DefaultStartTimeout = wsjson.DefaultStartTimeout
)

// Config is the deployment data of the Telnyx adapter.
type Config struct {
	// AuthToken is the stream_auth_token the Call Control application passes to
	// streaming_start (or dial/answer). Every upgrade must present it, in TokenHeader or as
	// "Authorization: Bearer <token>"; it is compared in constant time before the upgrade,
	// and the request is refused with 401 when no token is presented and 403 when it differs.
	// "" turns the check off (local demos and tests only).
	AuthToken string
	// ReadLimit is the largest inbound message accepted, in bytes. Default 64 KiB; larger
	// messages end the call with close code 1009.
	ReadLimit int64
	// DTMF chooses which digit sources a leg believes. Default media.DTMFAuto.
	DTMF media.DTMFMode
	// NewDetector makes one in-band DTMF detector per call; nil means no in-band detection.
	// Required when DTMF is media.DTMFInband.
	NewDetector func() media.ToneDetector
	// StartTimeout bounds the wait for "start" after the upgrade. Default 10s; a stream that
	// has not started by then is closed with 1008.
	StartTimeout time.Duration
}

// Validate reports the first problem with c, wrapped in ErrConfig. Zero values are defaults.
func (c Config) Validate() error {
	if strings.TrimSpace(c.AuthToken) != c.AuthToken {
		return fmt.Errorf("%w: auth token has leading or trailing white space", ErrConfig)
	}
	if err := wsjson.CheckConfig(c.ReadLimit, c.StartTimeout, c.DTMF, c.NewDetector != nil); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.ReadLimit == 0 {
		c.ReadLimit = DefaultReadLimit
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	return c
}

// authorize checks the stream token of an upgrade request against want: it returns 0 when it
// matches, http.StatusUnauthorized when none was presented and http.StatusForbidden when a
// different one was. Both sides are hashed first, so the comparison takes the same time
// whatever their lengths.
func authorize(r *http.Request, want string) int {
	got := r.Header.Get(TokenHeader)
	if got == "" {
		if a := r.Header.Get("Authorization"); len(a) > len("Bearer ") && strings.EqualFold(a[:len("Bearer ")], "Bearer ") {
			got = strings.TrimSpace(a[len("Bearer "):])
		}
	}
	if got == "" {
		return http.StatusUnauthorized
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(g[:], w[:]) != 1 {
		return http.StatusForbidden
	}
	return 0
}
