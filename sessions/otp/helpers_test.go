package otp_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/callproof/callproof/sessions/otp"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// codeReader is a fake CSPRNG that makes generate return codes[0], codes[1], ... in turn:
// each 16-byte read starts with one code's digits (as byte values 0-9).
type codeReader struct {
	mu    sync.Mutex
	codes []string
	i     int
}

func (r *codeReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	code := r.codes[r.i%len(r.codes)]
	r.i++
	clear(p)
	for j := 0; j < len(code) && j < len(p); j++ {
		p[j] = code[j] - '0'
	}
	return len(p), nil
}

// recorder is a Sender that keeps what it was given and can fail or take time.
type recorder struct {
	mu    sync.Mutex
	msgs  []otp.Message
	err   error
	delay time.Duration
}

func (r *recorder) Send(ctx context.Context, m otp.Message) error {
	if r.delay > 0 {
		select {
		case <-time.After(r.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	return r.err
}

func (r *recorder) all() []otp.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]otp.Message(nil), r.msgs...)
}

func (r *recorder) last(t *testing.T) otp.Message {
	t.Helper()
	all := r.all()
	if len(all) == 0 {
		t.Fatal("nothing was delivered")
	}
	return all[len(all)-1]
}

// observed returns a logger that records everything and a function that fails the test when
// any recorded entry contains one of the secrets.
func observed(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// assertNoSecret fails when a log entry (message and every field, encoded) or an error text
// contains one of the secrets.
func assertNoSecret(t *testing.T, logs *observer.ObservedLogs, errs []error, secrets ...string) {
	t.Helper()
	var texts []string
	for _, e := range logs.All() {
		fields, err := json.Marshal(e.ContextMap())
		if err != nil {
			t.Fatalf("encode fields: %v", err)
		}
		texts = append(texts, e.Message+" "+string(fields))
	}
	for _, err := range errs {
		if err != nil {
			texts = append(texts, err.Error())
			for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
				texts = append(texts, u.Error())
			}
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, txt := range texts {
			if strings.Contains(txt, s) {
				t.Errorf("secret %q leaked into %q", s, txt)
			}
		}
	}
	if logs.Len() == 0 && len(errs) == 0 {
		t.Error("nothing was checked")
	}
}
