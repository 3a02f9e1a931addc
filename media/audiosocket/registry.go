package audiosocket

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
)

// RegistryPath is where RegistryHandler is mounted.
const RegistryPath = "/v1/audiosocket/calls"

// Registry defaults.
const (
	DefaultRegistryTTL = 2 * time.Minute
	DefaultMaxEntries  = 10000
	// maxRegistration bounds a registration request body.
	maxRegistration = 4 << 10
	// maxField bounds each registered value.
	maxField = 128
)

// RegistryConfig configures a Registry and its HTTP endpoint.
type RegistryConfig struct {
	// Keys are the bearer keys RegistryHandler accepts (Authorization: Bearer <key>). With no
	// keys the endpoint refuses every request with 401: registrations are never anonymous.
	Keys []string
	// TTL is how long a registration waits for its call. Default 2 minutes.
	TTL time.Duration
	// MaxEntries bounds live registrations; beyond it Register fails and the endpoint answers
	// 503. Default 10000.
	MaxEntries int
}

// Validate reports the first problem with c, wrapped in ErrConfig.
func (c RegistryConfig) Validate() error {
	for i, k := range c.Keys {
		if k == "" || strings.TrimSpace(k) != k {
			return fmt.Errorf("%w: registry key %d is empty or has surrounding spaces", ErrConfig, i)
		}
	}
	switch {
	case c.TTL < 0:
		return fmt.Errorf("%w: registry ttl %s is negative", ErrConfig, c.TTL)
	case c.TTL > time.Hour:
		return fmt.Errorf("%w: registry ttl %s is above one hour", ErrConfig, c.TTL)
	case c.MaxEntries < 0:
		return fmt.Errorf("%w: registry max entries %d is negative", ErrConfig, c.MaxEntries)
	}
	return nil
}

// Registry holds the metadata of AudioSocket calls the dialplan announced, keyed by UUID, until
// the call arrives (Lookup removes it) or the TTL passes. Its Lookup method is a
// Config.Lookup. It starts no goroutines: expired entries are swept as registrations come in.
// It is safe for concurrent use.
type Registry struct {
	ttl  time.Duration
	max  int
	keys [][sha256.Size]byte

	mu        sync.Mutex
	entries   map[string]entry
	lastSweep time.Time
}

type entry struct {
	start   media.Start
	expires time.Time
}

// NewRegistry returns an empty registry. cfg should have passed Validate; invalid values are
// replaced by defaults and keys that are empty are ignored.
func NewRegistry(cfg RegistryConfig) *Registry {
	r := &Registry{ttl: cfg.TTL, max: cfg.MaxEntries, entries: map[string]entry{}}
	if r.ttl <= 0 || r.ttl > time.Hour {
		r.ttl = DefaultRegistryTTL
	}
	if r.max <= 0 {
		r.max = DefaultMaxEntries
	}
	for _, k := range cfg.Keys {
		if k != "" {
			r.keys = append(r.keys, sha256.Sum256([]byte(k)))
		}
	}
	return r
}

// Register records st (From, To, Verstat and Params; CallID and Transport are set by the
// server) for the call with this UUID, replacing an earlier registration. It returns an error
// wrapping ErrBadUUID for a malformed UUID and ErrRegistryFull when MaxEntries live
// registrations exist.
func (r *Registry) Register(uuid string, st media.Start) error {
	u, err := ParseUUID(uuid)
	if err != nil {
		return err
	}
	id := FormatUUID(u)
	st.Params = cloneParams(st.Params)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.lastSweep) >= r.ttl/4 || len(r.entries) >= r.max {
		r.sweep(now)
	}
	if _, ok := r.entries[id]; !ok && len(r.entries) >= r.max {
		return ErrRegistryFull
	}
	r.entries[id] = entry{start: st, expires: now.Add(r.ttl)}
	return nil
}

// Lookup implements Config.Lookup: it returns and removes the registration for uuid, if one
// exists and has not expired.
func (r *Registry) Lookup(_ context.Context, uuid string) (*media.Start, bool) {
	u, err := ParseUUID(uuid)
	if err != nil {
		return nil, false
	}
	id := FormatUUID(u)
	now := time.Now()
	r.mu.Lock()
	e, ok := r.entries[id]
	delete(r.entries, id)
	r.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	st := e.start
	st.CallID = id
	st.Transport = "audiosocket"
	return &st, true
}

// Len returns the number of registrations held, expired ones included until swept.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

func (r *Registry) sweep(now time.Time) {
	r.lastSweep = now
	for id, e := range r.entries {
		if !now.Before(e.expires) {
			delete(r.entries, id)
		}
	}
}

// authorized reports whether h carries one of the registry's bearer keys. Every key is
// compared, in constant time, whatever matches.
func (r *Registry) authorized(h string) bool {
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	ok := 0
	for i := range r.keys {
		ok |= subtle.ConstantTimeCompare(got[:], r.keys[i][:])
	}
	return ok == 1
}

// Registration is the JSON body of POST /v1/audiosocket/calls. Only uuid is required; the
// other fields become the call's media.Start (from, to, verstat) and stream parameters
// (request, lang, account).
type Registration struct {
	UUID    string `json:"uuid"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Verstat string `json:"verstat,omitempty"`
	Request string `json:"request,omitempty"`
	Lang    string `json:"lang,omitempty"`
	Account string `json:"account,omitempty"`
}

// Start returns the registration as call metadata.
func (g Registration) Start() media.Start {
	st := media.Start{From: g.From, To: g.To, Verstat: g.Verstat, Params: map[string]string{}}
	for k, v := range map[string]string{"request": g.Request, "lang": g.Lang, "account": g.Account} {
		if v != "" {
			st.Params[k] = v
		}
	}
	return st
}

// check validates every field's length and characters. Messages never quote values.
func (g Registration) check() error {
	if _, err := ParseUUID(g.UUID); err != nil {
		return errors.New("uuid: want 8-4-4-4-12 hexadecimal digits")
	}
	for name, v := range map[string]string{"from": g.From, "to": g.To, "verstat": g.Verstat,
		"request": g.Request, "lang": g.Lang, "account": g.Account} {
		if len(v) > maxField || !utf8.ValidString(v) || strings.ContainsFunc(v, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			return fmt.Errorf("%s: want at most %d printable characters", name, maxField)
		}
	}
	return nil
}

// RegistryHandler serves POST /v1/audiosocket/calls: it registers a call's metadata under
// its AudioSocket UUID before the dialplan starts AudioSocket. Answers: 201 with
// {"uuid","expires_in"} on success; 400 for a body that is not one JSON Registration (unknown
// fields included) or a malformed uuid; 401 without a valid bearer key; 405 for other
// methods; 413 for a body over 4 KiB; 503 when the registry is full. A nil log means
// zap.NewNop().
func RegistryHandler(reg *Registry, log *zap.Logger) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			httpError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		if !reg.authorized(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="callproof"`)
			httpError(w, http.StatusUnauthorized, "a valid bearer key is required")
			return
		}
		var g Registration
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRegistration))
		dec.DisallowUnknownFields()
		err := dec.Decode(&g)
		if err == nil && dec.Decode(&struct{}{}) != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxRegistration))
				return
			}
			httpError(w, http.StatusBadRequest, "body is not a registration: "+jsonProblem(err))
			return
		}
		if err := g.check(); err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := reg.Register(g.UUID, g.Start()); err != nil {
			log.Warn("audiosocket registration refused", zap.Error(err))
			httpError(w, http.StatusServiceUnavailable, "registry full; retry later")
			return
		}
		u, _ := ParseUUID(g.UUID)
		log.Info("audiosocket call registered", zap.String("uuid", FormatUUID(u)),
			zap.String("caller", media.MaskPhone(g.From)), zap.String("to", media.MaskPhone(g.To)))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(struct {
			UUID      string `json:"uuid"`
			ExpiresIn int    `json:"expires_in"`
		}{FormatUUID(u), int(reg.ttl / time.Second)})
	})
}

// jsonProblem describes a decoding error without echoing the body.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be a %s", te.Field, te.Type)
	case errors.Is(err, io.EOF):
		return "empty body"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "invalid JSON"
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}

func cloneParams(p map[string]string) map[string]string {
	out := make(map[string]string, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}
