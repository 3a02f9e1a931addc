package sessions

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rule says how many failures within Window lock a key, and for how long.
type Rule struct {
	// Max failures within Window that lock the key. Must be > 0.
	Max int
	// Window in which failures count, starting at the first failure. Must be > 0.
	Window time.Duration
	// LockFor is how long the key stays locked once Max is reached. Must be > 0.
	LockFor time.Duration
}

// Validate reports whether every field of r is positive.
func (r Rule) Validate() error {
	if r.Max <= 0 || r.Window <= 0 || r.LockFor <= 0 {
		return fmt.Errorf("%w: max %d, window %v, lock %v (all must be positive)", ErrBadRule, r.Max, r.Window, r.LockFor)
	}
	return nil
}

// LockState is what an Attempts store knows about a key.
type LockState struct {
	// Locked is true while the key is locked out.
	Locked bool
	// Failures counted in the current window (Rule.Max once locked).
	Failures int
	// RetryAfter is how long the lock still holds; zero when not locked.
	RetryAfter time.Duration
}

// Attempts counts failures per key and locks keys that fail too often. Keys are hashed by
// the caller (HMAC with the server key); implementations never see raw caller input.
// Implementations: *Memory here, sessions/redis for a shared store.
type Attempts interface {
	// Check reports the key's state without changing it.
	Check(ctx context.Context, key string) (LockState, error)
	// Fail records one failure atomically and locks the key when r.Max is reached. Failures
	// while the key is locked neither count nor extend the lock.
	Fail(ctx context.Context, key string, r Rule) (LockState, error)
	// Reset forgets the key (after a successful verification).
	Reset(ctx context.Context, key string) error
}

// Replay remembers single-use ids (a token's jti) so that each is accepted once. Ids are not
// secrets (a jti is logged); anything secret is hashed by the caller first.
// Implementations: *Memory here, sessions/redis for a shared store.
type Replay interface {
	// Consume records id until the given time and reports whether this was its first use.
	// It is atomic: of concurrent calls with one id, on any node, exactly one gets first.
	// An until that is not in the future still remembers id for MinReplayTTL. An error means
	// the answer is unknown: callers fail closed and accept nothing.
	Consume(ctx context.Context, id string, until time.Time) (first bool, err error)
}

// MinReplayTTL is the shortest time a Replay remembers an id, so that an id whose deadline
// passed between the caller's check and Consume still cannot be used twice in a row.
const MinReplayTTL = time.Second

// Claims are what a verified caller's token says, filled by the call flow. The signer adds
// iss, aud, iat, nbf, exp and jti (RFC 7519 §4.1). JSON names are the token's claim names.
// No claim ever carries an answer value: data points are factor names only.
type Claims struct {
	// Subject is the customer id (sub).
	Subject string `json:"sub"`
	// Call is the platform's call id.
	Call string `json:"call"`
	// ACR is "urn:callproof:ccpa:<level>".
	ACR string `json:"acr"`
	// AMR lists RFC 8176 authentication method references.
	AMR []string `json:"amr"`
	// CCPARequest is the consumer's request kind (know_categories, delete, ...).
	CCPARequest string `json:"ccpa_request"`
	// DataPoints names the factors that matched (dob, zip, ...), never their values.
	DataPoints []string `json:"data_points"`
	// Declaration is true when the caller affirmed the signed declaration (CCPA §7062).
	Declaration bool `json:"declaration"`
	// ANIMatch is true when the calling number is on file for the customer.
	ANIMatch bool `json:"ani_match"`
	// Verstat is the platform's STIR/SHAKEN verification status, if it gave one.
	Verstat string `json:"verstat,omitempty"`
	// RequestID is the audit record's key.
	RequestID string `json:"request_id"`
	// AuthorizedAgent is true when the caller acted for the consumer as an authorized agent
	// (CCPA §7063): the consumer was verified through a passcode sent to their contact on file.
	AuthorizedAgent bool `json:"authorized_agent,omitempty"`
}

// Issuer signs tokens for verified callers. sessions/token's Signer implements it.
type Issuer interface {
	// Issue signs c and returns the compact token and its jti (log the jti, never the token).
	Issue(ctx context.Context, c Claims) (token string, jti string, err error)
}

// Agent message types (DESIGN.md, Agent WebSocket).
const (
	TypeCall        = "call"
	TypeStep        = "step"
	TypeVerified    = "verified"
	TypeNotVerified = "not_verified"
	TypeError       = "error"

	StateStarted = "started"
	StateEnded   = "ended"
)

// AgentMessage is one message of a call's summary for the agent's screen. JSON names are the
// external contract (DESIGN.md): type call|step|verified|not_verified, never an answer value.
type AgentMessage struct {
	// ID is the event id assigned by the log, "<unix ms>-<seq>"; agents resume after it.
	ID   string    `json:"id,omitempty"`
	Type string    `json:"type"`
	Call string    `json:"call"`
	At   time.Time `json:"at"`
	// State is started or ended (type call).
	State string `json:"state,omitempty"`
	// Caller is the masked calling number (type call).
	Caller    string `json:"caller,omitempty"`
	Transport string `json:"transport,omitempty"`
	Request   string `json:"request,omitempty"`
	Lang      string `json:"lang,omitempty"`
	// Step is a prompt or factor id and Result passed, failed or skipped (type step).
	Step   string `json:"step,omitempty"`
	Result string `json:"result,omitempty"`
	// Level, AMR and Token describe a verification (type verified).
	Level string   `json:"level,omitempty"`
	AMR   []string `json:"amr,omitempty"`
	Token string   `json:"token,omitempty"`
	// Reason says why a call was not verified or ended.
	Reason string `json:"reason,omitempty"`
}

// String describes m for logs and test failures without the token.
func (m AgentMessage) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s call=%s", m.Type, m.Call)
	if m.ID != "" {
		fmt.Fprintf(&b, " id=%s", m.ID)
	}
	for _, kv := range [][2]string{{"state", m.State}, {"step", m.Step}, {"result", m.Result},
		{"level", m.Level}, {"reason", m.Reason}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	if m.Token != "" {
		fmt.Fprintf(&b, " token=[%d bytes redacted]", len(m.Token))
	}
	return b.String()
}

// AgentLog stores agent messages per call. *Memory implements it, and sessions/redis for
// a log shared by every node. sessions/agent's Hub publishes into it and replays from it.
type AgentLog interface {
	// Append stores m with a fresh event id, greater than every id the log handed out
	// before, in any call, and returns the stored copy (ID set; a zero At set to now).
	Append(ctx context.Context, m AgentMessage) (AgentMessage, error)
	// Since returns call's messages after afterID ("" for all), oldest first; call "" means
	// every call the log holds, merged in event id order. A malformed afterID gives
	// ErrBadEventID.
	Since(ctx context.Context, call, afterID string) ([]AgentMessage, error)
}

// AgentWatcher is an AgentLog whose appends can be observed, including (for a shared log)
// appends made by other nodes. The Hub uses it to deliver every node's messages.
type AgentWatcher interface {
	AgentLog
	// Watch starts a feed of the messages appended from now on (a shared log may also
	// include some appended shortly before). It does no I/O: a store that is down makes
	// Next fail, not Watch. ctx bounds only the call, not the feed.
	Watch(ctx context.Context) (AgentFeed, error)
}

// AgentFeed yields appended agent messages. Within one call, messages come in event id order,
// each exactly once and with no gap (as long as the log still holds them); messages of
// different calls may interleave in any order.
type AgentFeed interface {
	// Next blocks until at least one new message is available, ctx ends or the feed is
	// closed (ErrClosed). An error wrapping ErrUnavailable is transient: call Next again,
	// after a pause, and nothing is lost. Next must not be called concurrently with itself.
	Next(ctx context.Context) ([]AgentMessage, error)
	// Close releases the feed and makes a blocked Next return. It may be called concurrently
	// with Next, and more than once.
	Close() error
}

// Publisher delivers agent messages. sessions/agent's Hub implements it.
type Publisher interface {
	// Publish stores m in its call's log and pushes it to subscribed agents. An error means
	// the message may not reach the agent: callers fail closed on a verified outcome.
	Publish(ctx context.Context, m AgentMessage) error
}

// EventID orders agent messages: milliseconds since the epoch, then a sequence within that
// millisecond. Its string form is "<unix ms>-<seq>", like a Redis stream entry id.
type EventID struct {
	Millis int64
	Seq    uint64
}

// ParseEventID parses "<unix ms>-<seq>".
func ParseEventID(s string) (EventID, error) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok || len(s) > 41 {
		return EventID{}, ErrBadEventID
	}
	m, err1 := strconv.ParseInt(ms, 10, 64)
	q, err2 := strconv.ParseUint(seq, 10, 64)
	if err1 != nil || err2 != nil || m < 0 || ms[0] == '+' {
		return EventID{}, ErrBadEventID
	}
	return EventID{Millis: m, Seq: q}, nil
}

// String formats id as "<unix ms>-<seq>".
func (id EventID) String() string {
	return strconv.FormatInt(id.Millis, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// Compare returns -1, 0 or +1 as id is before, equal to or after o.
func (id EventID) Compare(o EventID) int {
	switch {
	case id.Millis < o.Millis:
		return -1
	case id.Millis > o.Millis:
		return 1
	case id.Seq < o.Seq:
		return -1
	case id.Seq > o.Seq:
		return 1
	}
	return 0
}

// IsZero reports whether id is the zero id (before every assigned id).
func (id EventID) IsZero() bool { return id == EventID{} }
