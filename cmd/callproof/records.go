package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/callproof/callproof/ivr"
	"github.com/callproof/callproof/sessions/audit"
	"github.com/callproof/callproof/sessions/webhook"
)

// auditRecorder keeps the flow's results in the hash-chained audit log (CCPA §7101), directly
// or, with Redis, through the shared stream that the writer node forwards to its file.
type auditRecorder struct{ log audit.Sink }

var _ ivr.Recorder = auditRecorder{}

func (a auditRecorder) Record(ctx context.Context, r ivr.Result) error {
	outcome := r.Outcome
	if outcome == "" {
		outcome = audit.OutcomeHangup
	}
	rec := audit.Record{ID: r.RequestID, Received: r.Received, Request: string(r.Request), Platform: r.Transport,
		Call: r.CallID, Locale: r.Locale, Outcome: outcome, DenialBasis: audit.DenialBasis(outcome, r.Reason),
		Declaration: r.Declaration, JTI: r.JTI, Agent: r.Agent, Level: string(r.Level)}
	if outcome != audit.OutcomeHangup {
		rec.Responded = r.Responded
		if rec.Responded.IsZero() {
			rec.Responded = time.Now()
		}
	}
	for _, f := range r.Passed {
		rec.Factors = append(rec.Factors, audit.FactorResult{Name: string(f), Result: "passed"})
	}
	for _, f := range r.Failed {
		rec.Factors = append(rec.Factors, audit.FactorResult{Name: string(f), Result: "failed"})
	}
	if rec.Level == "" {
		rec.Level = "none"
	}
	return a.log.Append(ctx, rec)
}

// crmNotifier queues the verification for the CRM webhook (durable, retried, signed).
type crmNotifier struct{ d *webhook.Dispatcher }

var _ ivr.Notifier = crmNotifier{}

func (c crmNotifier) Verified(ctx context.Context, r ivr.Result, token string) error {
	return c.d.Send(ctx, webhook.Event{ID: r.JTI, Call: r.CallID, Outcome: r.Outcome, Level: string(r.Level),
		Request: string(r.VerifiedRequest), AMR: r.AMR, Token: token})
}

// sealKey derives the key that encrypts queued webhook bodies (they hold tokens).
func sealKey(serverKey []byte) []byte {
	m := hmac.New(sha256.New, serverKey)
	m.Write([]byte("callproof webhook seal v1"))
	return m.Sum(nil)
}

// runAudit is `callproof audit verify`: it checks the audit log's hash chain.
func runAudit(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stderr, "usage: callproof audit verify [--file F | --data DIR]")
		return exitError{code: 2}
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "audit log (default <data>/"+audit.FileName+")")
	data := fs.String("data", getenv("CALLPROOF_DATA"), "data directory")
	if err := fs.Parse(args[1:]); err != nil {
		return exitError{code: 2}
	}
	path, err := auditPath(*file, *data)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	sum, err := audit.VerifyChain(f)
	if err != nil {
		var le *audit.LineError
		if errors.As(err, &le) {
			return exitError{code: 1, msg: fmt.Sprintf("audit: %s: chain broken at line %d: %v", path, le.Line, err)}
		}
		return exitError{code: 1, msg: fmt.Sprintf("audit: %s: %v", path, err)}
	}
	out, _ := json.Marshal(sum)
	fmt.Fprintf(stdout, "audit: %s: chain verified\n%s\n", path, out)
	return nil
}

// runReport is `callproof report ccpa --year Y`: the §7102 metrics from the audit log.
func runReport(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "ccpa" {
		fmt.Fprintln(stderr, "usage: callproof report ccpa --year YEAR [--json] [--file F | --data DIR] [--tz ZONE]")
		return exitError{code: 2}
	}
	fs := flag.NewFlagSet("report ccpa", flag.ContinueOnError)
	fs.SetOutput(stderr)
	year := fs.Int("year", time.Now().Year()-1, "calendar year")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	file := fs.String("file", "", "audit log (default <data>/"+audit.FileName+")")
	data := fs.String("data", getenv("CALLPROOF_DATA"), "data directory")
	tz := fs.String("tz", "UTC", "time zone that defines the calendar year")
	if err := fs.Parse(args[1:]); err != nil {
		return exitError{code: 2}
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return exitError{code: 2, msg: "report: --tz: " + err.Error()}
	}
	path, err := auditPath(*file, *data)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	rep, err := audit.ReportIn(f, *year, loc)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.Table(stdout)
}

func auditPath(file, data string) (string, error) {
	if file != "" {
		return file, nil
	}
	if data == "" {
		data = demoDataDir()
	}
	return filepath.Join(data, audit.FileName), nil
}
