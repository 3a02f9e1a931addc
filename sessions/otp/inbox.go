package otp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// DefaultInboxSize is how many messages NewInbox keeps when given 0.
const DefaultInboxSize = 50

// InboxMessage is one message the demo inbox shows: the destination masked, the code in
// clear (it is the demo's whole point).
type InboxMessage struct {
	To        string    `json:"to"`
	Channel   string    `json:"channel"`
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
	SentAt    time.Time `json:"sent_at"`
	Call      string    `json:"call"`
	Locale    string    `json:"locale"`
}

// Inbox is the demo's sender: it keeps the last N messages in memory for the /phone page
// (InboxHandler) and, with WithConsole, prints each one on the demo console.
//
// DEMO ONLY. It shows codes in clear to whoever can reach the handler or read the console;
// never wire it into `callproof serve`.
type Inbox struct {
	max     int
	now     func() time.Time
	console io.Writer

	mu   sync.Mutex
	msgs []InboxMessage // oldest first
}

var _ Sender = (*Inbox)(nil)

// NewInbox returns an inbox keeping the last n messages (0: DefaultInboxSize). It honours
// WithConsole and WithSenderClock.
func NewInbox(n int, opts ...SenderOption) *Inbox {
	if n <= 0 {
		n = DefaultInboxSize
	}
	o := applySenderOptions(opts)
	return &Inbox{max: n, now: o.now, console: o.console}
}

// Send implements Sender: it records m, and prints it when a console is set.
func (i *Inbox) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	im := InboxMessage{To: m.Masked(), Channel: m.Channel, Code: m.Code.Reveal(), ExpiresAt: m.ExpiresAt,
		SentAt: i.now(), Call: m.Call, Locale: m.Locale}
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.msgs) == i.max {
		i.msgs = slices.Delete(i.msgs, 0, 1)
	}
	i.msgs = append(i.msgs, im)
	if i.console != nil {
		_, _ = fmt.Fprintf(i.console, "demo inbox: %s code %s to %s (call %s, expires %s)\n", im.Channel, im.Code, im.To,
			im.Call, im.ExpiresAt.UTC().Format("15:04:05 UTC"))
	}
	return nil
}

// Messages returns the unexpired messages, newest first; call "" means every call.
func (i *Inbox) Messages(call string) []InboxMessage {
	now := i.now()
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]InboxMessage, 0, len(i.msgs))
	for _, m := range slices.Backward(i.msgs) {
		if m.ExpiresAt.After(now) && (call == "" || m.Call == call) {
			out = append(out, m)
		}
	}
	return out
}

// InboxHandler serves GET /v1/demo/inbox[?call=ID]: {"messages":[InboxMessage...]}, newest
// first, expired ones left out. DEMO ONLY: it hands out codes to anyone who asks.
func (i *Inbox) InboxHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		call := r.URL.Query().Get("call")
		if len(call) > 128 {
			http.Error(w, "call id too long", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_ = json.NewEncoder(w).Encode(struct {
			Messages []InboxMessage `json:"messages"`
		}{i.Messages(call)})
	})
}
