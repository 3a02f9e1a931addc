package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Delivery is one event on its way to one URL.
type Delivery struct {
	// ID is unique in the queue ("dlv_" + 24 hex digits); Enqueue assigns it when empty.
	ID string `json:"id"`
	// URL receives the POST.
	URL string `json:"url"`
	// Key is the Idempotency-Key: the event id (the token's jti).
	Key string `json:"key"`
	// Body is the JSON body, or its sealed form when Sealed.
	Body   []byte `json:"body"`
	Sealed bool   `json:"sealed,omitempty"`
	// Created is when it was queued; NextAt when it may be attempted next.
	Created time.Time `json:"created"`
	NextAt  time.Time `json:"next_at"`
	// Attempts counts the attempts made.
	Attempts int `json:"attempts"`
	// LastError is the last attempt's failure ("HTTP 503", "timeout", ...): never a URL,
	// a body or a secret.
	LastError string `json:"last_error,omitempty"`
	// Dead is true on the dead-letter list.
	Dead bool `json:"dead,omitempty"`
}

// String describes d without its body.
func (d Delivery) String() string {
	return d.ID + " to " + hostOf(d.URL) + " key=" + d.Key
}

// Queue holds deliveries durably. FileQueue implements it; a Redis one can (see the package
// doc on sealing). Every method is safe for concurrent use.
type Queue interface {
	// Enqueue stores d (assigning d.ID when empty) and returns once it is durable.
	Enqueue(ctx context.Context, d Delivery) error
	// Lease returns the live delivery due at now with the earliest NextAt, and hides it from
	// other Lease calls for ttl or until Ack, Retry or DeadLetter. When none is due it
	// returns nil and the NextAt of the earliest live delivery not leased (zero if none).
	Lease(ctx context.Context, now time.Time, ttl time.Duration) (*Delivery, time.Time, error)
	// Ack removes a delivered delivery.
	Ack(ctx context.Context, id string) error
	// Retry records a failed attempt and makes the delivery due again at at.
	Retry(ctx context.Context, id string, at time.Time, lastErr string) error
	// DeadLetter records a failed attempt and moves the delivery to the dead-letter list.
	DeadLetter(ctx context.Context, id string, lastErr string) error
	// Stats counts deliveries by state.
	Stats(ctx context.Context) (QueueStats, error)
}

// QueueStats counts a queue's deliveries by state.
type QueueStats struct {
	// Pending: not yet attempted. Retrying: attempted, waiting for the next attempt.
	// Leased: being attempted now. Dead: on the dead-letter list.
	Pending, Retrying, Leased, Dead int
	// Delivered counts acknowledged deliveries since the queue was created.
	Delivered uint64
}

func newDeliveryID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "dlv_" + hex.EncodeToString(b[:])
}
