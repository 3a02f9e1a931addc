package kba_test

import (
	"errors"
	"testing"
	"time"

	"github.com/callproof/callproof/kba"
)

func TestDefaultLockout(t *testing.T) {
	r := kba.DefaultLockout()
	if r.MaxFailures != 3 || r.Window != 24*time.Hour || r.Duration != 30*time.Minute {
		t.Errorf("DefaultLockout = %+v", r)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("default rule invalid: %v", err)
	}
}

func TestLockoutValidate(t *testing.T) {
	tests := []struct {
		name string
		r    kba.LockoutRule
		ok   bool
	}{
		{"one failure", kba.LockoutRule{MaxFailures: 1, Window: time.Hour, Duration: time.Minute}, true},
		{"NIST ceiling", kba.LockoutRule{MaxFailures: 100, Window: time.Hour, Duration: time.Minute}, true},
		{"zero failures", kba.LockoutRule{Window: time.Hour, Duration: time.Minute}, false},
		{"over NIST", kba.LockoutRule{MaxFailures: 101, Window: time.Hour, Duration: time.Minute}, false},
		{"no window", kba.LockoutRule{MaxFailures: 3, Duration: time.Minute}, false},
		{"no duration", kba.LockoutRule{MaxFailures: 3, Window: time.Hour}, false},
	}
	for _, tt := range tests {
		err := tt.r.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, kba.ErrInvalidLockout)) {
			t.Errorf("%s: Validate = %v", tt.name, err)
		}
	}
}

func TestSubjectKey(t *testing.T) {
	key := []byte("0123456789abcdef")
	tests := []struct {
		kind, value, want string
	}{
		// python3: hmac.new(key, b"account:40001234", hashlib.sha256).hexdigest()
		{kba.SubjectAccount, "40001234", "ad6ee2cb75fa74e64f6b65cd0bcae07131d436ccb81f2da93fbf9e2ee45568fa"},
		{kba.SubjectCaller, "+14155550100", "1e836b71557ec23ef4df62a4bd07d77db6ed1b33a39385380ea1c03d535b5e15"},
	}
	for _, tt := range tests {
		if got := kba.SubjectKey(key, tt.kind, tt.value); got != tt.want {
			t.Errorf("SubjectKey(%s, %s) = %s, want %s", tt.kind, tt.value, got, tt.want)
		}
	}
	a := kba.SubjectKey(key, kba.SubjectAccount, "40001234")
	if a == kba.SubjectKey(key, kba.SubjectCaller, "40001234") {
		t.Error("kinds do not separate keys")
	}
	if a == kba.SubjectKey([]byte("another key 0123"), kba.SubjectAccount, "40001234") {
		t.Error("server key does not change the key")
	}
}
