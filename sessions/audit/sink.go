package audit

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

// Sink takes records. *Log writes them to the chained file; on a multi-node deployment,
// sessions/redis provides a Sink that XADDs each record to a Redis Stream (the record's
// MarshalJSON, in one field), for one writer node to Forward into the file.
//
// Implementations must validate the record (Record.Validate) before taking it, return only
// once it is durable (in the file, or acknowledged by Redis with the stream's persistence),
// and never log its content.
type Sink interface {
	Append(ctx context.Context, r Record) error
}

// Entry is one record read from a shared queue, with the queue's id for it (a stream entry id).
type Entry struct {
	ID     string
	Record Record
}

// Source is the reading side of a shared queue of records, read by one writer node. On a
// Redis Stream: Receive is XREADGROUP (own pending entries first with "0", then ">", and
// XAUTOCLAIM of a dead writer's entries), Ack is XACK. An entry that cannot be decoded is
// returned with a zero Record so that Forward acknowledges it and logs its id.
type Source interface {
	// Receive blocks until entries are available or ctx ends; it may return none.
	Receive(ctx context.Context) ([]Entry, error)
	// Ack marks entries as appended to the file.
	Ack(ctx context.Context, ids ...string) error
}

// batchSink is a Sink that commits many records at once (*Log).
type batchSink interface {
	AppendBatch(ctx context.Context, recs []Record) error
}

// ForwardRetry is how long Forward waits after a failed Receive or append.
const ForwardRetry = time.Second

// Forward moves records from src to dst until ctx ends (then it returns nil): each batch
// received is appended in one commit when dst is a *Log, and acknowledged only after it is
// durable. If the append fails, nothing is acknowledged and the batch comes back. Entries
// whose record does not validate are logged by id, acknowledged and dropped: they would
// never pass (nodes validate before they add, so this means a bug or a foreign writer).
func Forward(ctx context.Context, src Source, dst Sink, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("audit")
	wait := func() bool {
		t := time.NewTimer(ForwardRetry)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for ctx.Err() == nil {
		entries, err := src.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Warn("audit: receive from the shared queue failed", zap.Error(err))
			if !wait() {
				break
			}
			continue
		}
		if len(entries) == 0 {
			continue
		}
		ids := make([]string, 0, len(entries))
		recs := make([]Record, 0, len(entries))
		var bad []string
		for _, e := range entries {
			r := e.Record
			if r.Channel == "" {
				r.Channel = "ivr"
			}
			if err := r.Validate(); err != nil {
				log.Error("audit: dropping an invalid record from the shared queue", zap.String("entry", e.ID), zap.Error(err))
				bad = append(bad, e.ID)
				continue
			}
			ids = append(ids, e.ID)
			recs = append(recs, r)
		}
		if err := appendAll(ctx, dst, recs); err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Error("audit: append from the shared queue failed; the batch will be read again", zap.Int("records", len(recs)), zap.Error(err))
			if !wait() {
				break
			}
			continue
		}
		if err := src.Ack(ctx, append(ids, bad...)...); err != nil && ctx.Err() == nil {
			// The entries come back and are dropped as duplicates by id.
			log.Warn("audit: acknowledge on the shared queue failed", zap.Int("entries", len(ids)+len(bad)), zap.Error(err))
		}
	}
	return nil
}

func appendAll(ctx context.Context, dst Sink, recs []Record) error {
	if b, ok := dst.(batchSink); ok {
		return b.AppendBatch(ctx, recs)
	}
	var errs []error
	for _, r := range recs {
		if err := dst.Append(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
