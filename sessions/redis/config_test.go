package redis

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9/maintnotifications"
)

func TestConfigResolve(t *testing.T) {
	type want struct {
		topo           string
		addrs          []string
		master         string
		db             int
		user, password string
		tls            bool
		dial           time.Duration
	}
	tests := []struct {
		name string
		cfg  Config
		want want
	}{
		{"plain URL", Config{URL: "redis://localhost"},
			want{topo: topoSingle, addrs: []string{"localhost:6379"}, dial: DefaultDialTimeout}},
		{"credentials and db", Config{URL: "redis://app:p%40ss@10.0.0.1:6380/2"},
			want{topo: topoSingle, addrs: []string{"10.0.0.1:6380"}, db: 2, user: "app", password: "p@ss", dial: DefaultDialTimeout}},
		{"password only", Config{URL: "redis://:secret@h:1"},
			want{topo: topoSingle, addrs: []string{"h:1"}, password: "secret", dial: DefaultDialTimeout}},
		{"IPv6", Config{URL: "redis://[::1]:7000"},
			want{topo: topoSingle, addrs: []string{"[::1]:7000"}, dial: DefaultDialTimeout}},
		{"TLS", Config{URL: "rediss://cache.example.com:6380"},
			want{topo: topoSingle, addrs: []string{"cache.example.com:6380"}, tls: true, dial: DefaultDialTimeout}},
		{"TLS flag", Config{URL: "redis://h", TLS: true},
			want{topo: topoSingle, addrs: []string{"h:6379"}, tls: true, dial: DefaultDialTimeout}},
		{"cluster by addrs", Config{URL: "redis://a:1?addr=b:2&addr=c:3"},
			want{topo: topoCluster, addrs: []string{"a:1", "b:2", "c:3"}, dial: DefaultDialTimeout}},
		{"cluster by flag", Config{URL: "redis://a:1?cluster=true"},
			want{topo: topoCluster, addrs: []string{"a:1"}, dial: DefaultDialTimeout}},
		{"sentinel", Config{URL: "redis-sentinel://s1/mymaster/1?addr=s2:26380"},
			want{topo: topoSentinel, addrs: []string{"s1:26379", "s2:26380"}, master: "mymaster", db: 1, dial: DefaultDialTimeout}},
		{"sentinel master_name", Config{URL: "redis-sentinel://s1:5000?master_name=m"},
			want{topo: topoSentinel, addrs: []string{"s1:5000"}, master: "m", dial: DefaultDialTimeout}},
		{"sentinel TLS", Config{URL: "rediss-sentinel://s1/m"},
			want{topo: topoSentinel, addrs: []string{"s1:26379"}, master: "m", tls: true, dial: DefaultDialTimeout}},
		{"URL timeouts", Config{URL: "redis://h?dial_timeout=500ms&read_timeout=1s&write_timeout=1s"},
			want{topo: topoSingle, addrs: []string{"h:6379"}, dial: 500 * time.Millisecond}},
		{"config timeout wins", Config{URL: "redis://h?dial_timeout=500ms", DialTimeout: time.Second},
			want{topo: topoSingle, addrs: []string{"h:6379"}, dial: time.Second}},
		{"config credentials win", Config{URL: "redis://u:p@h", Username: "svc", Password: "from-file"},
			want{topo: topoSingle, addrs: []string{"h:6379"}, user: "svc", password: "from-file", dial: DefaultDialTimeout}},
		{"addrs single", Config{Addrs: []string{"h:1"}, DB: 3},
			want{topo: topoSingle, addrs: []string{"h:1"}, db: 3, dial: DefaultDialTimeout}},
		{"addrs cluster", Config{Addrs: []string{"h:1", "h:2"}},
			want{topo: topoCluster, addrs: []string{"h:1", "h:2"}, dial: DefaultDialTimeout}},
		{"addrs cluster flag", Config{Addrs: []string{"h:1"}, Cluster: true},
			want{topo: topoCluster, addrs: []string{"h:1"}, dial: DefaultDialTimeout}},
		{"addrs sentinel", Config{Addrs: []string{"s:26379", "t:26379"}, MasterName: "m"},
			want{topo: topoSentinel, addrs: []string{"s:26379", "t:26379"}, master: "m", dial: DefaultDialTimeout}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, topo, err := tt.cfg.resolve()
			if err != nil {
				t.Fatal(err)
			}
			got := want{topo: topo, addrs: o.Addrs, master: o.MasterName, db: o.DB, user: o.Username,
				password: o.Password, tls: o.TLSConfig != nil, dial: o.DialTimeout}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			if !o.ContextTimeoutEnabled || o.MaintNotificationsConfig == nil ||
				o.MaintNotificationsConfig.Mode != maintnotifications.ModeDisabled {
				t.Fatal("context deadlines must be honoured and maintenance notifications off")
			}
			if o.ReadTimeout <= 0 || o.WriteTimeout <= 0 {
				t.Fatalf("timeouts %v %v", o.ReadTimeout, o.WriteTimeout)
			}
			if o.IsClusterMode != (topo == topoCluster) {
				t.Fatal("IsClusterMode")
			}
			if err := tt.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"nothing", Config{}},
		{"url and addrs", Config{URL: "redis://h", Addrs: []string{"h:1"}}},
		{"bad scheme", Config{URL: "http://h"}},
		{"unix socket", Config{URL: "unix:///tmp/redis.sock"}},
		{"no host", Config{URL: "redis://"}},
		{"unknown parameter", Config{URL: "redis://h?pool_size=5"}},
		{"bad db", Config{URL: "redis://h/x"}},
		{"negative db", Config{URL: "redis://h/-1"}},
		{"long path", Config{URL: "redis://h/1/2"}},
		{"bad port", Config{URL: "redis://h:99999"}},
		{"comma-separated hosts", Config{URL: "redis://h1,h2?cluster=true"}},
		{"bad addr param", Config{URL: "redis://h?addr=nohost"}},
		{"bad duration", Config{URL: "redis://h?dial_timeout=soon"}},
		{"bad cluster flag", Config{URL: "redis://h?cluster=maybe"}},
		{"sentinel without master", Config{URL: "redis-sentinel://s1"}},
		{"cluster db", Config{URL: "redis://a:1?addr=b:2", DB: 1}},
		{"cluster and sentinel", Config{Addrs: []string{"a:1"}, MasterName: "m", Cluster: true}},
		{"bad addr", Config{Addrs: []string{"h"}}},
		{"negative timeout", Config{URL: "redis://h", ReadTimeout: -time.Second}},
		{"prefix with braces", Config{URL: "redis://h", Prefix: "cp{x}:"}},
		{"prefix with space", Config{URL: "redis://h", Prefix: "cp :"}},
		{"long prefix", Config{URL: "redis://h", Prefix: strings.Repeat("p", 65)}},
		{"secret in a bad URL", Config{URL: "redis://user:hunter2@h:port"}},
		{"secret with bad param", Config{URL: "redis://user:hunter2@h?foo=hunter2x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if !errors.Is(err, ErrBadConfig) {
				t.Fatalf("Validate: %v, want ErrBadConfig", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}
