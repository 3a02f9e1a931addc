package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/callproof/callproof/sessions/redis"
)

// agentKeyFile is where the demo keeps its agent key, so `callproof call` on the same machine
// can watch the agent stream without the key on its command line.
const agentKeyFile = "demo-agent-key"

// serverDescriptors is how many descriptors the server's table is grown to hold at start-up
// (see reserveDescriptors), at most its soft RLIMIT_NOFILE: a call takes one or two, so
// thousands of calls, without a pause of the accepting thread each time the count doubles.
const serverDescriptors = 1 << 16

func runServer(ctx context.Context, demo bool, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServerFlags(demo, args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if _, err := reserveDescriptors(serverDescriptors); err != nil {
		log.Warn("descriptor table not grown in advance", zap.Error(err))
	}
	if cfg.Redis != "" {
		redis.RouteClientLogs(log.Named("redis-client"))
	}
	if demo && len(cfg.AgentKeys) == 0 {
		key, err := demoAgentKey(cfg.Data)
		if err != nil {
			return err
		}
		cfg.AgentKeys = []string{key}
	}
	app, err := NewApp(cfg, log, demo, stdout)
	if err != nil {
		return err
	}
	if cfg.Processors == "auto" {
		scaled := make(chan struct{})
		defer func() { <-scaled }() // GOMAXPROCS is whole again when the server returns
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			defer close(scaled)
			scaleProcs(sctx, func(n int) { log.Info("processors in use", zap.Int("processors", n)) })
		}()
	}
	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		app.Close()
		return fmt.Errorf("listen %s: %w", cfg.HTTP, err)
	}
	asAddr, err := app.ListenAudioSocket()
	if err != nil {
		ln.Close()
		app.Close()
		return err
	}
	sipAddr, err := app.ListenSIP()
	if err != nil {
		ln.Close()
		app.Close()
		return err
	}
	adminAddr, err := app.ListenAdmin()
	if err != nil {
		ln.Close()
		app.Close()
		return err
	}
	if demo && adminAddr != nil {
		fmt.Fprintf(stdout, "admin (pprof, metrics) on http://%s/debug/pprof/\n", adminAddr)
	}
	if demo {
		printDemoBanner(stdout, app, ln.Addr(), asAddr, sipAddr)
	}
	log.Info("listening", zap.String("http", ln.Addr().String()), zap.Bool("demo", demo))
	return app.Serve(ctx, ln)
}

// demoAgentKey returns the demo's agent key, creating one on first start.
func demoAgentKey(dataDir string) (string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dataDir, agentKeyFile)
	if data, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(data))) >= 16 {
		return strings.TrimSpace(string(data)), nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	key := "ak_" + base64.RawURLEncoding.EncodeToString(b)
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", err
	}
	return key, nil
}

func printDemoBanner(w io.Writer, a *App, addr, asAddr, sipAddr net.Addr) {
	base := "http://" + hostPort(addr)
	wsBase := "ws://" + hostPort(addr)
	fmt.Fprintf(w, "Callproof demo\n\n")
	fmt.Fprintf(w, "  Agent screen         %s/agent   (sign in with the agent key below)\n", base)
	fmt.Fprintf(w, "  Browser softphone    %s/phone\n", base)
	fmt.Fprintf(w, "  Twilio media stream  %s/v1/twilio\n", wsBase)
	fmt.Fprintf(w, "  Twilio voice webhook %s/v1/twilio/voice\n", base)
	fmt.Fprintf(w, "  Asterisk WebSocket   %s/v1/asterisk\n", wsBase)
	if asAddr != nil {
		fmt.Fprintf(w, "  Asterisk AudioSocket %s  (register callers at %s/v1/audiosocket/calls)\n", hostPort(asAddr), base)
	}
	if sipAddr != nil {
		fmt.Fprintf(w, "  SIP (UDP and TCP)    sip:callproof@%s  (from this machine)\n", hostPort(sipAddr))
	}
	fmt.Fprintf(w, "  WebRTC offers        %s/v1/webrtc\n", base)
	fmt.Fprintf(w, "  Agent stream         %s/v1/agent\n", wsBase)
	fmt.Fprintf(w, "  JWKS                 %s/.well-known/jwks.json\n", base)
	fmt.Fprintf(w, "  Health, metrics      %s/healthz  %s/metrics\n\n", base, base)
	fmt.Fprintf(w, "  Agent key            %s  (also in %s)\n", a.cfg.AgentKeys[0], filepath.Join(a.cfg.Data, agentKeyFile))
	fmt.Fprintf(w, "  Data directory       %s\n\n", a.cfg.Data)
	fmt.Fprintf(w, "Demo customers (answers: kba/demo_directory.yaml):\n")
	for _, c := range a.directory.Customers() {
		fmt.Fprintf(w, "  %-10s %-16s account %s\n", c.ID, c.Name, c.Account)
	}
	fmt.Fprintf(w, "\nPlace a call:  go run ./cmd/callproof call --customer cus_ada --server %s\n", base)
	fmt.Fprintf(w, "Passcodes (authorized agents) appear here and in the /phone page's inbox.\n\n")
}

func hostPort(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// newLogger builds the process logger: console for people, JSON for machines.
func newLogger(format, level string, out io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	var enc zapcore.Encoder
	switch format {
	case "json":
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, errors.New("log format: want console or json")
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(out)), lvl)), nil
}
