package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/callproof/callproof/media"
)

// Config is the server's configuration. Every key can come from the YAML file given to
// --config, from a CALLPROOF_* environment variable, or from a flag; flags win over the
// environment, which wins over the file.
type Config struct {
	// HTTP is the listen address of the HTTP listener. Default ":8080".
	HTTP string `yaml:"http"`
	// TLSCertFile and TLSKeyFile make the HTTP listener serve HTTPS and WSS (PEM files).
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// Admin is the listen address of the admin listener (Go pprof profiles and /metrics);
	// empty, the default, disables it. It has no authentication: bind it to loopback or a
	// management network only.
	Admin string `yaml:"admin"`
	// SIP and AudioSocket are the SIP and AudioSocket listen addresses; empty disables them.
	SIP         string `yaml:"sip"`
	AudioSocket string `yaml:"audiosocket"`
	// Data is the data directory (signing key, server key, audit log). Demo default: a folder
	// under the user's cache directory.
	Data string `yaml:"data"`
	// Directory is a customer directory YAML file; empty uses the embedded demo directory
	// (demo only: serve requires one).
	Directory string `yaml:"directory"`
	// Redis is the Redis URL for shared state (redis://host:6379/0, rediss:// for TLS;
	// Cluster redis://h1:6379?addr=h2:6379&addr=h3:6379 or one seed with ?cluster=true;
	// Sentinel redis-sentinel://s1:26379/master?addr=s2:26379); empty keeps state in memory. RedisPassword(File) keeps the password off the URL.
	Redis             string `yaml:"redis"`
	RedisPassword     string `yaml:"redis_password"`
	RedisPasswordFile string `yaml:"redis_password_file"`
	// AgentKeys authenticate agent desktops on /v1/agent. Demo default: one random key.
	AgentKeys []string `yaml:"agent_keys"`
	// AgentFrameAncestors are the origins (https://crm.example.com) allowed to embed one
	// call's panel, /agent/call/{id}, in an iframe. Default: none.
	AgentFrameAncestors []string `yaml:"agent_frame_ancestors"`
	// AgentKeysFile holds agent keys, one per line (keeps them off the command line).
	AgentKeysFile string `yaml:"agent_keys_file"`
	// OTPWebhook is where one-time passcodes are posted (signed with OTPWebhookSecret).
	OTPWebhook           string `yaml:"otp_webhook"`
	OTPWebhookSecret     string `yaml:"otp_webhook_secret"`
	OTPWebhookSecretFile string `yaml:"otp_webhook_secret_file"`
	// SMTP delivers passcodes to emails on file.
	SMTPAddr         string `yaml:"smtp_addr"`
	SMTPFrom         string `yaml:"smtp_from"`
	SMTPUsername     string `yaml:"smtp_username"`
	SMTPPassword     string `yaml:"smtp_password"`
	SMTPPasswordFile string `yaml:"smtp_password_file"`
	// Twilio Programmable Messaging delivers passcodes to phones on file (with
	// twilio_auth_token); TwilioBaseURL defaults to Twilio's API.
	TwilioAccountSID string `yaml:"twilio_account_sid"`
	TwilioFrom       string `yaml:"twilio_from"`
	TwilioBaseURL    string `yaml:"twilio_base_url"`
	// PublicURL is the URL platforms dial (https://host), used for signatures and TwiML.
	PublicURL string `yaml:"public_url"`
	// TwilioAuthToken enables X-Twilio-Signature checks.
	TwilioAuthToken     string `yaml:"twilio_auth_token"`
	TwilioAuthTokenFile string `yaml:"twilio_auth_token_file"`
	// SigningKeyFile is an Ed25519 PKCS#8 PEM key; default <data>/signing-key.pem, created on
	// first start.
	SigningKeyFile string `yaml:"signing_key_file"`
	// SIPPublicIP is the address put in SDP answers (c=); SIPRTPPortMin/Max the RTP port
	// range; SIPUsers (user -> password, or SIPUsersFile with user:password lines) admit
	// trunks by digest authentication and SIPAllowFrom by address (demo: loopback);
	// SIPTransferURI receives a REFER carrying the token when a call ends (empty: BYE);
	// SIPDialedMap maps a dialled number to a request type.
	SIPPublicIP    string            `yaml:"sip_public_ip"`
	SIPRTPPortMin  int               `yaml:"sip_rtp_port_min"`
	SIPRTPPortMax  int               `yaml:"sip_rtp_port_max"`
	SIPUsers       map[string]string `yaml:"sip_users"`
	SIPUsersFile   string            `yaml:"sip_users_file"`
	SIPAllowFrom   []string          `yaml:"sip_allow_from"`
	SIPTransferURI string            `yaml:"sip_transfer_uri"`
	SIPDialedMap   map[string]string `yaml:"sip_dialed_map"`
	// AuditRetention is how long request records are kept (CCPA §7101: at least 24 months).
	AuditRetention string `yaml:"audit_retention"`
	// AuditWriter, with Redis, makes this node persist the shared stream of request records
	// to its chained file. Default true; for one file per deployment set it false on every
	// node but one (records wait in Redis while no writer runs).
	AuditWriter *bool `yaml:"audit_writer"`
	// NodeName names this node in the audit writers' group. Default: the host name.
	NodeName string `yaml:"node_name"`
	// CRMWebhookURLs receive each verification, signed with CRMWebhookSecret(File).
	CRMWebhookURLs       []string `yaml:"crm_webhook_urls"`
	CRMWebhookSecret     string   `yaml:"crm_webhook_secret"`
	CRMWebhookSecretFile string   `yaml:"crm_webhook_secret_file"`
	// SigningKeyDir is a key directory for rotation: the key whose file name sorts last signs,
	// the others stay in the JWKS (see the README). It wins over SigningKeyFile.
	SigningKeyDir string `yaml:"signing_key_dir"`
	// Policies override the default CCPA policy per request type.
	Policies map[string]PolicyConfig `yaml:"policies"`
	// DTMFPlatforms overrides DTMF per platform (twilio: events, freeswitch: inband, ...).
	DTMFPlatforms map[string]string `yaml:"dtmf_platforms"`
	// LockoutMaxDuration caps the lockout back-off (each lock within a week lasts twice the
	// one before). Default 24h.
	LockoutMaxDuration time.Duration `yaml:"lockout_max_duration"`
	// Issuer and Audience are the token's iss and aud. Defaults "callproof", "callproof-agent".
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// TokenLifetime is how long a token is valid. Default 5m.
	TokenLifetime time.Duration `yaml:"token_lifetime"`
	// DrainTimeout bounds how long SIGTERM waits for live calls. Default 30s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// FirstDigitTimeout, InterDigitTimeout: digit collection. Defaults 5s, 3s.
	FirstDigitTimeout time.Duration `yaml:"first_digit_timeout"`
	InterDigitTimeout time.Duration `yaml:"inter_digit_timeout"`
	// LockoutFailures, LockoutWindow, LockoutDuration: failed sessions that lock an account
	// within the window, and for how long. Defaults 3, 24h, 30m.
	LockoutFailures int           `yaml:"lockout_failures"`
	LockoutWindow   time.Duration `yaml:"lockout_window"`
	LockoutDuration time.Duration `yaml:"lockout_duration"`
	// StreamsPerMinute and StreamsBurst limit how fast one source address (one /64 for IPv6)
	// may open media streams; beyond it the upgrade gets 429. Defaults 120 and 30; a negative
	// rate disables the limit (a platform behind one NAT address may need that).
	StreamsPerMinute int `yaml:"streams_per_minute"`
	StreamsBurst     int `yaml:"streams_burst"`
	// VonageToken (or VonageTokenFile) is the secret Vonage presents, as the last path segment
	// of the NCCO's websocket uri (/v1/vonage/<token>) or a bearer header.
	VonageToken     string `yaml:"vonage_token"`
	VonageTokenFile string `yaml:"vonage_token_file"`
	// JambonzUsername/JambonzPassword(File) are the listen verb's wsAuth (HTTP Basic), and
	// FreeSWITCHUsername/FreeSWITCHPassword(File) mod_audio_fork's.
	JambonzUsername        string `yaml:"jambonz_username"`
	JambonzPassword        string `yaml:"jambonz_password"`
	JambonzPasswordFile    string `yaml:"jambonz_password_file"`
	FreeSWITCHUsername     string `yaml:"freeswitch_username"`
	FreeSWITCHPassword     string `yaml:"freeswitch_password"`
	FreeSWITCHPasswordFile string `yaml:"freeswitch_password_file"`
	// WebRTC: the UDP port range for media (0: ephemeral), the public addresses to advertise
	// behind NAT, STUN/TURN server URLs and TURN credentials, and whether loopback host
	// candidates are offered (tests and the demo only).
	WebRTCPortMin        uint16   `yaml:"webrtc_port_min"`
	WebRTCPortMax        uint16   `yaml:"webrtc_port_max"`
	WebRTCPublicIPs      []string `yaml:"webrtc_public_ips"`
	WebRTCICEServers     []string `yaml:"webrtc_ice_servers"`
	WebRTCTURNUsername   string   `yaml:"webrtc_turn_username"`
	WebRTCTURNCredential string   `yaml:"webrtc_turn_credential"`
	WebRTCAllowLoopback  *bool    `yaml:"webrtc_allow_loopback"`
	// TelnyxStreamToken (or TelnyxStreamTokenFile) is the stream_auth_token every Telnyx
	// stream must present; empty accepts unauthenticated streams (restrict them by network).
	TelnyxStreamToken     string `yaml:"telnyx_stream_token"`
	TelnyxStreamTokenFile string `yaml:"telnyx_stream_token_file"`
	// AsteriskUsername and AsteriskPassword (or AsteriskPasswordFile) are the HTTP Basic
	// credentials Asterisk's websocket_client.conf presents on /v1/asterisk.
	AsteriskUsername     string `yaml:"asterisk_username"`
	AsteriskPassword     string `yaml:"asterisk_password"`
	AsteriskPasswordFile string `yaml:"asterisk_password_file"`
	// PlatformAllowFrom limits the platforms that have no authentication of their own
	// (AudioSocket) or should also be filtered by address (Asterisk) to these CIDR prefixes.
	PlatformAllowFrom []string `yaml:"platform_allow_from"`
	// RegistrationKeys authenticate POST /v1/audiosocket/calls, where a dialplan registers
	// the caller's metadata for an AudioSocket call. Default: the agent keys.
	RegistrationKeys []string `yaml:"registration_keys"`
	// DTMF is the digit mode for platform legs: auto, events or inband. Default auto.
	DTMF string `yaml:"dtmf"`
	// Processors is "auto" (default: the server runs on as few of the processors GOMAXPROCS
	// allows as its load needs, see procs.go) or "all" (Go's own behaviour: all of them).
	Processors string `yaml:"processors"`
	// LogFormat is "console" (demo default) or "json" (serve default); LogLevel debug, info,
	// warn or error (default info).
	LogFormat string `yaml:"log_format"`
	LogLevel  string `yaml:"log_level"`
}

// PolicyConfig overrides one request type's verification policy; absent fields keep the
// default's.
type PolicyConfig struct {
	Level       string   `yaml:"level"`
	Points      int      `yaml:"points"`
	Declaration *bool    `yaml:"declaration"`
	Factors     []string `yaml:"factors"`
}

// envName maps a yaml key to its environment variable.
func envName(key string) string { return "CALLPROOF_" + strings.ToUpper(key) }

// loadConfigFile reads a YAML config strictly: unknown keys are errors.
func loadConfigFile(path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := parseConfig(data, cfg); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// parseConfig decodes YAML configuration strictly: unknown keys are errors.
func parseConfig(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// applyEnv overlays CALLPROOF_* variables.
func applyEnv(cfg *Config, getenv func(string) string) error {
	str := map[string]*string{
		"http": &cfg.HTTP, "admin": &cfg.Admin, "sip": &cfg.SIP, "audiosocket": &cfg.AudioSocket, "data": &cfg.Data,
		"directory": &cfg.Directory, "redis": &cfg.Redis, "agent_keys_file": &cfg.AgentKeysFile,
		"otp_webhook": &cfg.OTPWebhook, "public_url": &cfg.PublicURL,
		"twilio_auth_token": &cfg.TwilioAuthToken, "twilio_auth_token_file": &cfg.TwilioAuthTokenFile,
		"signing_key_file": &cfg.SigningKeyFile, "signing_key_dir": &cfg.SigningKeyDir,
		"tls_cert_file": &cfg.TLSCertFile, "tls_key_file": &cfg.TLSKeyFile,
		"audit_retention": &cfg.AuditRetention, "node_name": &cfg.NodeName, "crm_webhook_secret": &cfg.CRMWebhookSecret,
		"crm_webhook_secret_file": &cfg.CRMWebhookSecretFile, "sip_public_ip": &cfg.SIPPublicIP, "sip_users_file": &cfg.SIPUsersFile, "sip_transfer_uri": &cfg.SIPTransferURI, "issuer": &cfg.Issuer, "audience": &cfg.Audience,
		"dtmf": &cfg.DTMF, "processors": &cfg.Processors, "log_format": &cfg.LogFormat, "log_level": &cfg.LogLevel,
		"asterisk_username": &cfg.AsteriskUsername, "asterisk_password": &cfg.AsteriskPassword,
		"asterisk_password_file": &cfg.AsteriskPasswordFile, "telnyx_stream_token": &cfg.TelnyxStreamToken,
		"telnyx_stream_token_file": &cfg.TelnyxStreamTokenFile, "vonage_token": &cfg.VonageToken,
		"vonage_token_file": &cfg.VonageTokenFile, "jambonz_username": &cfg.JambonzUsername,
		"jambonz_password": &cfg.JambonzPassword, "jambonz_password_file": &cfg.JambonzPasswordFile,
		"freeswitch_username": &cfg.FreeSWITCHUsername, "freeswitch_password": &cfg.FreeSWITCHPassword,
		"freeswitch_password_file": &cfg.FreeSWITCHPasswordFile, "webrtc_turn_username": &cfg.WebRTCTURNUsername,
		"webrtc_turn_credential": &cfg.WebRTCTURNCredential, "redis_password": &cfg.RedisPassword,
		"otp_webhook_secret": &cfg.OTPWebhookSecret, "otp_webhook_secret_file": &cfg.OTPWebhookSecretFile,
		"smtp_addr": &cfg.SMTPAddr, "smtp_from": &cfg.SMTPFrom, "smtp_username": &cfg.SMTPUsername,
		"smtp_password": &cfg.SMTPPassword, "smtp_password_file": &cfg.SMTPPasswordFile,
		"twilio_account_sid": &cfg.TwilioAccountSID, "twilio_from": &cfg.TwilioFrom, "twilio_base_url": &cfg.TwilioBaseURL,
		"redis_password_file": &cfg.RedisPasswordFile,
	}
	for k, p := range str {
		if v := getenv(envName(k)); v != "" {
			*p = v
		}
	}
	dur := map[string]*time.Duration{
		"token_lifetime": &cfg.TokenLifetime, "drain_timeout": &cfg.DrainTimeout,
		"first_digit_timeout": &cfg.FirstDigitTimeout, "inter_digit_timeout": &cfg.InterDigitTimeout,
		"lockout_window": &cfg.LockoutWindow, "lockout_duration": &cfg.LockoutDuration,
		"lockout_max_duration": &cfg.LockoutMaxDuration,
	}
	for k, p := range dur {
		if v := getenv(envName(k)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %w", envName(k), err)
			}
			*p = d
		}
	}
	ints := map[string]*int{"lockout_failures": &cfg.LockoutFailures,
		"streams_per_minute": &cfg.StreamsPerMinute, "streams_burst": &cfg.StreamsBurst}
	for k, p := range ints {
		if v := getenv(envName(k)); v != "" {
			if _, err := fmt.Sscan(v, p); err != nil {
				return fmt.Errorf("%s: %w", envName(k), err)
			}
		}
	}
	if v := getenv(envName("agent_keys")); v != "" {
		cfg.AgentKeys = append(cfg.AgentKeys, splitList(v)...)
	}
	if v := getenv(envName("registration_keys")); v != "" {
		cfg.RegistrationKeys = append(cfg.RegistrationKeys, splitList(v)...)
	}
	for k, p := range map[string]*[]string{"webrtc_public_ips": &cfg.WebRTCPublicIPs, "webrtc_ice_servers": &cfg.WebRTCICEServers} {
		if v := getenv(envName(k)); v != "" {
			*p = splitList(v)
		}
	}
	if v := getenv(envName("webrtc_allow_loopback")); v != "" {
		b := v == "true" || v == "1" || v == "yes"
		cfg.WebRTCAllowLoopback = &b
	}
	for k, p := range map[string]*uint16{"webrtc_port_min": &cfg.WebRTCPortMin, "webrtc_port_max": &cfg.WebRTCPortMax} {
		if v := getenv(envName(k)); v != "" {
			if _, err := fmt.Sscan(v, p); err != nil {
				return fmt.Errorf("%s: %w", envName(k), err)
			}
		}
	}
	if v := getenv(envName("agent_frame_ancestors")); v != "" {
		cfg.AgentFrameAncestors = splitList(v)
	}
	if v := getenv(envName("audit_writer")); v != "" {
		b := v == "true" || v == "1" || v == "yes"
		cfg.AuditWriter = &b
	}
	if v := getenv(envName("crm_webhook_urls")); v != "" {
		cfg.CRMWebhookURLs = splitList(v)
	}
	if v := getenv(envName("sip_allow_from")); v != "" {
		cfg.SIPAllowFrom = splitList(v)
	}
	if v := getenv(envName("platform_allow_from")); v != "" {
		cfg.PlatformAllowFrom = splitList(v)
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\n' || r == ' ' }) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// parseServerFlags applies the file, the environment and the flags, in that order.
func parseServerFlags(demo bool, args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	name := "serve"
	if demo {
		name = "demo"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "YAML configuration file")
	httpAddr := fs.String("http", "", "HTTP listen address (default :8080)")
	adminAddr := fs.String("admin", "", "admin listen address for pprof and /metrics (default off; loopback only)")
	sipAddr := fs.String("sip", "", "SIP listen address, UDP and TCP (e.g. :5060)")
	asAddr := fs.String("audiosocket", "", "Asterisk AudioSocket listen address (e.g. :9092)")
	data := fs.String("data", "", "data directory (keys, audit log)")
	dir := fs.String("directory", "", "customer directory YAML file")
	redisURL := fs.String("redis", "", "Redis URL for shared state (absent: in memory)")
	otp := fs.String("otp-webhook", "", "URL that receives one-time passcodes")
	public := fs.String("public-url", "", "public URL platforms dial (https://host)")
	dtmf := fs.String("dtmf", "", "digit mode for platform legs: auto, events or inband")
	procs := fs.String("processors", "", "auto (default: as few processors as the load needs, up to GOMAXPROCS) or all")
	var keys stringList
	fs.Var(&keys, "agent-key", "agent key for /v1/agent (repeatable); prefer agent_keys_file or CALLPROOF_AGENT_KEYS")
	if err := fs.Parse(args); err != nil {
		return Config{}, exitError{code: 2}
	}
	if fs.NArg() > 0 {
		return Config{}, exitError{code: 2, msg: fmt.Sprintf("%s: unexpected argument %q", name, fs.Arg(0))}
	}
	var cfg Config
	if *configFile == "" {
		*configFile = getenv("CALLPROOF_CONFIG")
	}
	if *configFile != "" {
		if err := loadConfigFile(*configFile, &cfg); err != nil {
			return Config{}, err
		}
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return Config{}, err
	}
	set := map[string]func(){}
	set["http"] = func() { cfg.HTTP = *httpAddr }
	set["admin"] = func() { cfg.Admin = *adminAddr }
	set["sip"] = func() { cfg.SIP = *sipAddr }
	set["audiosocket"] = func() { cfg.AudioSocket = *asAddr }
	set["data"] = func() { cfg.Data = *data }
	set["directory"] = func() { cfg.Directory = *dir }
	set["redis"] = func() { cfg.Redis = *redisURL }
	set["otp-webhook"] = func() { cfg.OTPWebhook = *otp }
	set["public-url"] = func() { cfg.PublicURL = *public }
	set["dtmf"] = func() { cfg.DTMF = *dtmf }
	set["processors"] = func() { cfg.Processors = *procs }
	set["agent-key"] = func() { cfg.AgentKeys = append(cfg.AgentKeys, keys...) }
	fs.Visit(func(f *flag.Flag) {
		if apply, ok := set[f.Name]; ok {
			apply()
		}
	})
	return cfg, cfg.finish(demo)
}

// finish fills defaults and validates.
func (c *Config) finish(demo bool) error {
	if c.HTTP == "" {
		c.HTTP = ":8080"
	}
	if c.LogFormat == "" {
		c.LogFormat = "json"
		if demo {
			c.LogFormat = "console"
		}
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	switch c.Processors {
	case "":
		c.Processors = "auto"
	case "auto", "all":
	default:
		return fmt.Errorf("processors %q: want auto or all", c.Processors)
	}
	if c.StreamsPerMinute == 0 {
		c.StreamsPerMinute = 120
	}
	if c.StreamsBurst <= 0 {
		c.StreamsBurst = 30
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("tls_cert_file and tls_key_file go together")
	}
	if c.TLSCertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}
	if c.AudioSocket == "" && demo {
		c.AudioSocket = "127.0.0.1:9092"
	}
	if c.SIP == "" && demo {
		c.SIP = "127.0.0.1:5060"
	}
	if demo && len(c.SIPAllowFrom) == 0 && len(c.SIPUsers) == 0 && c.SIPUsersFile == "" {
		c.SIPAllowFrom = []string{"127.0.0.0/8", "::1/128"}
	}
	if c.SIPUsersFile != "" {
		data, err := os.ReadFile(c.SIPUsersFile)
		if err != nil {
			return fmt.Errorf("sip users file: %w", err)
		}
		if c.SIPUsers == nil {
			c.SIPUsers = map[string]string{}
		}
		for _, line := range strings.Split(string(data), "\n") {
			if u, p, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && u != "" {
				c.SIPUsers[u] = p
			}
		}
	}
	for _, p := range c.SIPAllowFrom {
		if _, err := netip.ParsePrefix(p); err != nil {
			return fmt.Errorf("sip_allow_from %q: want a CIDR prefix", p)
		}
	}
	if c.Data == "" {
		if !demo {
			return errors.New("serve: a data directory is required (--data, data:, CALLPROOF_DATA)")
		}
		c.Data = demoDataDir()
	}
	if c.Directory == "" && !demo {
		return errors.New("serve: a customer directory is required (--directory, directory:, CALLPROOF_DIRECTORY)")
	}
	if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
		return fmt.Errorf("http address %q: %w", c.HTTP, err)
	}
	if c.Admin != "" {
		if _, _, err := net.SplitHostPort(c.Admin); err != nil {
			return fmt.Errorf("admin address %q: %w", c.Admin, err)
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("public url %q: want http(s)://host", c.PublicURL)
		}
	}
	// What this build does not do yet fails loudly rather than being ignored.
	if c.AgentKeysFile != "" {
		data, err := os.ReadFile(c.AgentKeysFile)
		if err != nil {
			return fmt.Errorf("agent keys file: %w", err)
		}
		c.AgentKeys = append(c.AgentKeys, splitList(string(data))...)
	}
	if c.TwilioAuthTokenFile != "" {
		data, err := os.ReadFile(c.TwilioAuthTokenFile)
		if err != nil {
			return fmt.Errorf("twilio auth token file: %w", err)
		}
		c.TwilioAuthToken = strings.TrimSpace(string(data))
	}
	for _, f := range []struct {
		name string
		file string
		dst  *string
	}{
		{"telnyx_stream_token_file", c.TelnyxStreamTokenFile, &c.TelnyxStreamToken},
		{"redis_password_file", c.RedisPasswordFile, &c.RedisPassword},
		{"otp_webhook_secret_file", c.OTPWebhookSecretFile, &c.OTPWebhookSecret},
		{"smtp_password_file", c.SMTPPasswordFile, &c.SMTPPassword},
		{"crm_webhook_secret_file", c.CRMWebhookSecretFile, &c.CRMWebhookSecret},
		{"vonage_token_file", c.VonageTokenFile, &c.VonageToken},
		{"jambonz_password_file", c.JambonzPasswordFile, &c.JambonzPassword},
		{"freeswitch_password_file", c.FreeSWITCHPasswordFile, &c.FreeSWITCHPassword},
	} {
		if f.file == "" {
			continue
		}
		data, err := os.ReadFile(f.file)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = strings.TrimSpace(string(data))
	}
	if c.WebRTCAllowLoopback == nil {
		c.WebRTCAllowLoopback = &demo // loopback candidates only where caller and server share a host
	}
	if c.AsteriskPasswordFile != "" {
		data, err := os.ReadFile(c.AsteriskPasswordFile)
		if err != nil {
			return fmt.Errorf("asterisk password file: %w", err)
		}
		c.AsteriskPassword = strings.TrimSpace(string(data))
	}
	if (c.AsteriskUsername == "") != (c.AsteriskPassword == "") {
		return errors.New("asterisk_username and asterisk_password go together")
	}
	for platform, m := range c.DTMFPlatforms {
		if _, err := media.ParseDTMFMode(m); err != nil {
			return fmt.Errorf("dtmf_platforms.%s: %w", platform, err)
		}
	}
	if _, err := buildPolicies(c.Policies); err != nil {
		return err
	}
	for _, o := range c.AgentFrameAncestors {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" {
			return fmt.Errorf("agent_frame_ancestors %q: want an origin such as https://crm.example.com", o)
		}
	}
	for _, p := range c.PlatformAllowFrom {
		if _, err := netip.ParsePrefix(p); err != nil {
			return fmt.Errorf("platform_allow_from %q: want a CIDR prefix such as 10.0.0.0/8", p)
		}
	}
	if c.AudioSocket != "" {
		if _, _, err := net.SplitHostPort(c.AudioSocket); err != nil {
			return fmt.Errorf("audiosocket address %q: %w", c.AudioSocket, err)
		}
	}
	for _, k := range c.AgentKeys {
		if len(k) < 16 {
			return errors.New("agent keys must be at least 16 characters")
		}
	}
	if len(c.AgentKeys) == 0 && !demo {
		return errors.New("serve: at least one agent key is required (agent_keys_file, CALLPROOF_AGENT_KEYS or --agent-key)")
	}
	return nil
}

// demoDataDir is where the demo keeps its keys between runs.
func demoDataDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "callproof-demo")
}
