package redis

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults for Config.
const (
	DefaultPrefix       = "callproof:"
	DefaultDialTimeout  = 2 * time.Second
	DefaultReadTimeout  = 2 * time.Second
	DefaultWriteTimeout = 2 * time.Second

	maxRetries          = 2
	defaultPort         = "6379"
	defaultSentinelPort = "26379"
	maxPrefixLen        = 64
)

// Config says how to reach Redis. Give either URL or Addrs.
type Config struct {
	// URL is one of:
	//
	//	redis://[user:password@]host[:port][/db]                  one server (port 6379)
	//	rediss://...                                              the same over TLS
	//	redis://host:port?addr=host2:port&addr=host3:port         Cluster (two or more nodes)
	//	redis://host:port?cluster=true                            Cluster from one seed node
	//	redis-sentinel://[user:password@]host[:port]/master[/db]?addr=host2:port
	//	                                                          Sentinel (port 26379); the
	//	                                                          master name may also be given
	//	                                                          as ?master_name=
	//	rediss-sentinel://...                                     Sentinel, TLS everywhere
	//
	// Query parameters dial_timeout, read_timeout and write_timeout (Go durations) are
	// accepted; any other is an error. User and password apply to the data nodes.
	URL string
	// Addrs are host:port addresses, the alternative to URL: one server, Cluster nodes (two
	// or more, or Cluster set) or Sentinels (MasterName set).
	Addrs []string
	// MasterName selects Sentinel: the name of the monitored master.
	MasterName string
	// Cluster selects Redis Cluster even with a single seed address.
	Cluster bool
	// DB is the database number (single server or Sentinel only). Default 0.
	DB int
	// Prefix starts every key and channel. Default "callproof:". No braces, spaces or
	// control characters; at most 64 bytes.
	Prefix string
	// Username and Password authenticate to the data nodes (Redis 6 ACL, or just a
	// password). When set they override the URL's.
	Username, Password string
	// TLS connects with TLS (system roots, TLS 1.2 or later), as rediss:// does.
	TLS bool
	// DialTimeout bounds connecting. Default 2s.
	DialTimeout time.Duration
	// ReadTimeout and WriteTimeout bound one command's reply and request. Default 2s each.
	// Each Store operation as a whole is bounded by DialTimeout + ReadTimeout + WriteTimeout
	// (6 s by default): the longest a caller waits before failing closed. A refused
	// connection fails in well under a second.
	ReadTimeout, WriteTimeout time.Duration
}

// Validate reports whether c can be used.
func (c Config) Validate() error {
	_, _, err := c.resolve()
	return err
}

func (c Config) prefix() string {
	if c.Prefix == "" {
		return DefaultPrefix
	}
	return c.Prefix
}

// topology names for logs.
const (
	topoSingle   = "single"
	topoCluster  = "cluster"
	topoSentinel = "sentinel"
)

// resolve turns c into go-redis options and names the topology.
func (c Config) resolve() (*goredis.UniversalOptions, string, error) {
	bad := func(format string, args ...any) (*goredis.UniversalOptions, string, error) {
		return nil, "", fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, args...)...)
	}
	prefix := c.prefix()
	if len(prefix) > maxPrefixLen || strings.ContainsFunc(prefix, func(r rune) bool {
		return r == '{' || r == '}' || r <= ' ' || r == 0x7f
	}) {
		return bad("prefix must be at most %d bytes without braces, spaces or control characters", maxPrefixLen)
	}
	o := &goredis.UniversalOptions{
		ClientName:            "callproof",
		ContextTimeoutEnabled: true,
		// OSS Redis rejects CLIENT MAINT_NOTIFICATIONS (go-libraries.md §3).
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		// CLIENT SETINFO needs Redis 7.2; Debian 12 ships 7.0.
		DisableIdentity: true,
		// Fail closed quickly: a command is tried at most 3 times (a retry replaces a pooled
		// connection that broke, e.g. after a restart), each with at most 2 dials.
		MaxRetries:         maxRetries,
		MaxRetryBackoff:    100 * time.Millisecond,
		DialerRetries:      2,
		DialerRetryTimeout: 50 * time.Millisecond,
	}
	var u parsedURL
	switch {
	case c.URL != "" && len(c.Addrs) > 0:
		return bad("give either url or addrs, not both")
	case c.URL != "":
		var err error
		if u, err = parseURL(c.URL); err != nil {
			return nil, "", err
		}
	case len(c.Addrs) > 0:
		for _, a := range c.Addrs {
			if err := checkAddr(a); err != nil {
				return nil, "", err
			}
		}
		u.addrs = c.Addrs
	default:
		return bad("no redis address: set url or addrs")
	}
	o.Addrs = append([]string(nil), u.addrs...)
	o.MasterName = u.master
	if c.MasterName != "" {
		o.MasterName = c.MasterName
	}
	cluster := c.Cluster || u.cluster
	o.DB = u.db
	if c.DB != 0 {
		o.DB = c.DB
	}
	o.Username, o.Password = u.user, u.password
	if c.Username != "" || c.Password != "" {
		o.Username, o.Password = c.Username, c.Password
	}
	if c.TLS || u.tls {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12} // ServerName comes from each address
	}
	for _, d := range []struct {
		name     string
		dst      *time.Duration
		cfg, url time.Duration
		def      time.Duration
	}{
		{"dial timeout", &o.DialTimeout, c.DialTimeout, u.dial, DefaultDialTimeout},
		{"read timeout", &o.ReadTimeout, c.ReadTimeout, u.read, DefaultReadTimeout},
		{"write timeout", &o.WriteTimeout, c.WriteTimeout, u.write, DefaultWriteTimeout},
	} {
		switch {
		case d.cfg < 0:
			return bad("%s must not be negative", d.name)
		case d.cfg > 0:
			*d.dst = d.cfg
		case d.url > 0:
			*d.dst = d.url
		default:
			*d.dst = d.def
		}
	}
	if o.DB < 0 {
		return bad("db must not be negative")
	}
	var topo string
	switch {
	case o.MasterName != "" && cluster:
		return bad("choose Sentinel (master name) or Cluster, not both")
	case o.MasterName != "":
		topo = topoSentinel
	case cluster || len(o.Addrs) > 1:
		topo = topoCluster
		o.IsClusterMode = true
		if o.DB != 0 {
			return bad("Redis Cluster has only db 0")
		}
	default:
		topo = topoSingle
	}
	if u.sentinel && topo != topoSentinel {
		return bad("a redis-sentinel URL needs a master name (path or master_name)")
	}
	return o, topo, nil
}

// parsedURL is what a Config URL says.
type parsedURL struct {
	addrs             []string
	master            string
	sentinel          bool
	cluster           bool
	db                int
	user, password    string
	tls               bool
	dial, read, write time.Duration
}

// parseURL parses a Config URL. Errors never quote the URL (it may hold a password).
func parseURL(raw string) (parsedURL, error) {
	var p parsedURL
	bad := func(format string, args ...any) (parsedURL, error) {
		return parsedURL{}, fmt.Errorf("%w: url: "+format, append([]any{ErrBadConfig}, args...)...)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("not a valid URL")
	}
	port := defaultPort
	switch u.Scheme {
	case "redis":
	case "rediss":
		p.tls = true
	case "redis-sentinel":
		p.sentinel, port = true, defaultSentinelPort
	case "rediss-sentinel":
		p.sentinel, p.tls, port = true, true, defaultSentinelPort
	default:
		return bad("scheme must be redis, rediss, redis-sentinel or rediss-sentinel")
	}
	if u.Opaque != "" || u.Fragment != "" {
		return bad("want scheme://[user:password@]host[:port][/path][?query]")
	}
	if u.User != nil {
		p.user = u.User.Username()
		p.password, _ = u.User.Password()
	}
	host := u.Hostname()
	if host == "" {
		return bad("no host")
	}
	if u.Port() != "" {
		port = u.Port()
	}
	p.addrs = []string{net.JoinHostPort(host, port)}
	if err := checkAddr(p.addrs[0]); err != nil {
		return parsedURL{}, err
	}
	var path []string
	for _, s := range strings.Split(strings.Trim(u.Path, "/"), "/") {
		if s != "" {
			path = append(path, s)
		}
	}
	dbText := ""
	switch {
	case p.sentinel && len(path) <= 2:
		if len(path) > 0 {
			p.master = path[0]
		}
		if len(path) == 2 {
			dbText = path[1]
		}
	case !p.sentinel && len(path) <= 1:
		if len(path) == 1 {
			dbText = path[0]
		}
	default:
		return bad("path must be /db, or /master[/db] for Sentinel")
	}
	if dbText != "" {
		if p.db, err = strconv.Atoi(dbText); err != nil || p.db < 0 {
			return bad("database must be a number")
		}
	}
	q := u.Query()
	for name, vals := range q {
		switch name {
		case "addr":
			for _, a := range vals {
				if err := checkAddr(a); err != nil {
					return parsedURL{}, err
				}
				p.addrs = append(p.addrs, a)
			}
		case "master_name":
			p.master, p.sentinel = vals[len(vals)-1], true
		case "cluster":
			b, err := strconv.ParseBool(vals[len(vals)-1])
			if err != nil {
				return bad("cluster must be true or false")
			}
			p.cluster = b
		case "dial_timeout", "read_timeout", "write_timeout":
			d, err := time.ParseDuration(vals[len(vals)-1])
			if err != nil || d <= 0 {
				return bad("%s must be a positive duration such as 2s", name)
			}
			switch name {
			case "dial_timeout":
				p.dial = d
			case "read_timeout":
				p.read = d
			default:
				p.write = d
			}
		default:
			return bad("unknown parameter %q", name)
		}
	}
	if p.sentinel && p.master == "" {
		return bad("a Sentinel URL needs a master name (path or master_name)")
	}
	return p, nil
}

func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("%w: address %q: want host:port", ErrBadConfig, a)
	}
	if strings.Contains(host, ",") {
		return fmt.Errorf("%w: address %q: one host per address; give more nodes with ?addr=host:port", ErrBadConfig, a)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("%w: address %q: bad port", ErrBadConfig, a)
	}
	return nil
}
