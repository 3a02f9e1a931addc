package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions/redis/redistest"
	"github.com/callproof/callproof/sessions/webhook"
)

// The CRM delivery queue on Redis: leases hide a delivery, retries come back when due,
// dead letters and acknowledgements are counted, and another node sees the same queue.
func TestWebhookQueue(t *testing.T) {
	addr, prefix := redistest.Addr(t), redistest.Prefix()
	q := open(t, addr, prefix).WebhookQueue()
	other := open(t, addr, prefix).WebhookQueue()
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	for _, id := range []string{"dlv_1", "dlv_2"} {
		if err := q.Enqueue(ctx, webhook.Delivery{ID: id, URL: "https://crm.example/hook", Key: "jti-" + id,
			Body: []byte(`{"sealed":"..."}`), Sealed: true, Created: now, NextAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	d, _, err := q.Lease(ctx, now, 30*time.Second)
	if err != nil || d == nil || d.ID != "dlv_1" {
		t.Fatalf("first lease: %+v %v", d, err)
	}
	d2, _, err := other.Lease(ctx, now, 30*time.Second) // another node takes the other one
	if err != nil || d2 == nil || d2.ID != "dlv_2" {
		t.Fatalf("second lease: %+v %v", d2, err)
	}
	if d3, next, err := q.Lease(ctx, now, 30*time.Second); err != nil || d3 != nil || !next.Equal(now.Add(30*time.Second)) {
		t.Fatalf("both leased: %+v next %v %v", d3, next, err)
	}
	if err := q.Retry(ctx, "dlv_1", now.Add(time.Second), "HTTP 503"); err != nil {
		t.Fatal(err)
	}
	if d, next, _ := q.Lease(ctx, now, 30*time.Second); d != nil || !next.Equal(now.Add(time.Second)) {
		t.Fatalf("retry not due yet: %+v next %v", d, next)
	}
	d, _, _ = q.Lease(ctx, now.Add(2*time.Second), 30*time.Second)
	if d == nil || d.ID != "dlv_1" || d.Attempts != 1 || d.LastError != "HTTP 503" {
		t.Fatalf("retried delivery: %+v", d)
	}
	if err := q.DeadLetter(ctx, "dlv_1", "HTTP 410"); err != nil {
		t.Fatal(err)
	}
	if err := other.Ack(ctx, "dlv_2"); err != nil {
		t.Fatal(err)
	}
	st, err := q.Stats(ctx)
	if err != nil || st.Dead != 1 || st.Delivered != 1 || st.Pending+st.Retrying+st.Leased != 0 {
		t.Fatalf("stats %+v %v", st, err)
	}
}
