package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// ListenAdmin opens the admin listener when one is configured and serves on it until the app
// closes: Go's pprof profiles under /debug/pprof/ and the same /metrics as the main listener.
// It is separate so that profiles are never reachable from where platforms and agents
// connect. It returns nil when none is configured.
func (a *App) ListenAdmin() (net.Addr, error) {
	if a.cfg.Admin == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", a.cfg.Admin)
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w", a.cfg.Admin, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		a.log.Warn("admin listener is not on loopback: it has no authentication", zap.String("addr", ln.Addr().String()))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(a.log.Named("admin")),
	}
	go func() { _ = srv.Serve(ln) }()
	context.AfterFunc(a.hard, func() { _ = srv.Close() })
	a.log.Info("admin listening", zap.String("addr", ln.Addr().String()))
	return ln.Addr(), nil
}
