package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callproof/callproof/sessions/otp"
)

// maxOTPRetries bounds the optimistic retries of one passcode update under contention.
const maxOTPRetries = 32

// OTPStore returns the passcode state kept in Redis, so that every node sharing it enforces
// one set of per-account send caps, resend gaps and failure counts, and a code sent by one
// node can be checked on another. Each subject (already a hash) has one key holding the
// record as JSON (a MAC of the code, never the code; a masked destination) that expires at
// the record's KeepUntil. Updates are optimistic transactions (WATCH/MULTI/EXEC) on that one
// key, so they work on Cluster as well.
//
// What Redis loses (a restart without persistence) fails closed for checks: a code whose
// record is gone is no longer accepted. Send counts start again, within the node's own global
// send rate.
func (s *Store) OTPStore() otp.Store { return otpStore{s} }

type otpStore struct{ s *Store }

var _ otp.Store = otpStore{}

func (o otpStore) key(subject string) string { return o.s.prefix + "otp:{" + subject + "}" }

// errOTP wraps a Redis failure so that it matches otp.ErrUnavailable (the service fails
// closed on it) and sessions.ErrUnavailable. The message names the operation only.
func (o otpStore) errOTP(op string, err error) error {
	return fmt.Errorf("%w: %w", otp.ErrUnavailable, o.s.fail(op, err))
}

func (o otpStore) read(ctx context.Context, c goredis.Cmdable, key string) (otp.Record, bool, error) {
	data, err := c.Get(ctx, key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return otp.Record{}, false, nil
	}
	if err != nil {
		return otp.Record{}, false, o.errOTP("otp load", err)
	}
	var r otp.Record
	if err := json.Unmarshal(data, &r); err != nil {
		return otp.Record{}, false, fmt.Errorf("%w: redis otp load: a record does not decode", otp.ErrUnavailable)
	}
	if !r.KeepUntil.After(o.s.now()) {
		return otp.Record{}, false, nil
	}
	return r, true, nil
}

// Load implements otp.Store.
func (o otpStore) Load(ctx context.Context, subject string) (otp.Record, bool, error) {
	ctx, cancel := o.s.bound(ctx)
	defer cancel()
	return o.read(ctx, o.s.rdb, o.key(subject))
}

// fnError carries fn's own error out of the transaction unchanged.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// Update implements otp.Store: fn runs on the current record inside WATCH, and its result is
// written only if no other node changed the key meanwhile; otherwise fn runs again.
func (o otpStore) Update(ctx context.Context, subject string, fn func(otp.Record, bool) (otp.Record, error)) (otp.Record, error) {
	ctx, cancel := o.s.bound(ctx)
	defer cancel()
	key := o.key(subject)
	var stored otp.Record
	txf := func(tx *goredis.Tx) error {
		cur, found, err := o.read(ctx, tx, key)
		if err != nil {
			return err
		}
		next, err := fn(cur, found)
		if err != nil {
			return fnError{err}
		}
		var data []byte
		keep := next.KeepUntil.After(o.s.now())
		if keep {
			if data, err = json.Marshal(next); err != nil {
				return fnError{err}
			}
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			if keep {
				p.SetArgs(ctx, key, data, goredis.SetArgs{ExpireAt: next.KeepUntil})
			} else {
				p.Del(ctx, key)
			}
			return nil
		})
		if err == nil {
			stored = next
			if !keep {
				stored = otp.Record{}
			}
		}
		return err
	}
	for range maxOTPRetries {
		err := o.s.rdb.Watch(ctx, txf, key)
		if errors.Is(err, goredis.TxFailedErr) {
			continue // another node updated the record first: run fn on its result
		}
		var fe fnError
		if errors.As(err, &fe) {
			return otp.Record{}, fe.err
		}
		if errors.Is(err, otp.ErrUnavailable) {
			return otp.Record{}, err
		}
		if err != nil {
			return otp.Record{}, o.errOTP("otp update", err)
		}
		return stored, nil
	}
	return otp.Record{}, fmt.Errorf("%w: redis otp update: too much contention on one record", otp.ErrUnavailable)
}
