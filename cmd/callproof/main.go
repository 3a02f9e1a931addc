// Command callproof is the Callproof server and its tools: demo, serve, call, keygen and token
// verify. See the README for each subcommand.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signalContexts()
	defer stop()
	if code, ok := asAgentWatchChild(ctx); ok {
		stop()
		os.Exit(code)
	}
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "callproof:", ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "callproof:", err)
		os.Exit(1)
	}
}

// exitError carries an exit code other than 1 (2 for usage errors).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// drainKey is the context key under which signalContexts stores the drain channel: it is closed
// on the first SIGTERM or SIGINT. The returned context itself is cancelled on the second.
type drainKey struct{}

// signalContexts returns a context that is cancelled on the second termination signal and
// carries a channel closed on the first, so servers can drain before they stop.
func signalContexts() (context.Context, func()) {
	drain := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	ctx = context.WithValue(ctx, drainKey{}, (<-chan struct{})(drain))
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		n := 0
		for range sigs {
			n++
			if n == 1 {
				close(drain)
				continue
			}
			cancel()
			return
		}
	}()
	return ctx, func() { signal.Stop(sigs); cancel() }
}

// drainSignal returns the channel closed when the server should stop accepting calls and
// drain, or nil when the context carries none (tests drain by cancelling).
func drainSignal(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(drainKey{}).(<-chan struct{})
	return ch
}

const usage = `usage: callproof <command> [flags]

commands:
  demo           serve everything with embedded defaults and the demo directory
  serve          production server (--config FILE, CALLPROOF_* variables, flags)
  call           place a simulated call against a server and check the token
  load           many simulated calls at once, real-time audio both ways; latencies and failures
  dtmf FILE      find DTMF digits in a WAV or raw audio file (start ms, digit, duration ms)
  keygen         generate an Ed25519 signing key (PKCS#8 PEM)
  token verify   verify a token offline or against a JWKS
  audit verify   check the audit log's hash chain
  report ccpa    the CCPA §7102 metrics for a year, from the audit log

Run 'callproof <command> -h' for a command's flags.
`

// run is the whole program; main only supplies the process's context and streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{code: 2}
	}
	switch args[0] {
	case "demo":
		return runServer(ctx, true, args[1:], getenv, stdout, stderr)
	case "serve":
		return runServer(ctx, false, args[1:], getenv, stdout, stderr)
	case "call":
		return runCall(ctx, args[1:], getenv, stdout, stderr)
	case "load":
		return runLoad(ctx, args[1:], getenv, stdout, stderr)
	case "audit":
		return runAudit(args[1:], getenv, stdout, stderr)
	case "report":
		return runReport(args[1:], getenv, stdout, stderr)
	case "dtmf":
		return runDTMF(args[1:], stdout, stderr)
	case "keygen":
		return runKeygen(args[1:], stdout, stderr)
	case "token":
		if len(args) < 2 || args[1] != "verify" {
			fmt.Fprint(stderr, "usage: callproof token verify [flags] [TOKEN]\n")
			return exitError{code: 2}
		}
		return runTokenVerify(ctx, args[2:], stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "callproof: unknown command %q\n\n%s", args[0], usage)
	return exitError{code: 2}
}
