package kba_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/callproof/callproof/kba"
)

const secretValue = "97531864"

func TestSecretFmt(t *testing.T) {
	s := kba.Secret(secretValue)
	type holder struct {
		Answer kba.Secret
		Ptr    *kba.Secret
	}
	h := holder{Answer: s, Ptr: &s}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%10s"} {
		for _, arg := range []any{s, &s, h, []kba.Secret{s}, map[string]kba.Secret{"k": s}} {
			out := fmt.Sprintf(verb, arg)
			if strings.Contains(out, secretValue) || strings.Contains(out, fmt.Sprintf("%x", secretValue)) {
				t.Errorf("Sprintf(%s, %T) = %q leaks", verb, arg, out)
			}
			if !strings.Contains(out, kba.Redacted) && !strings.HasPrefix(out, "0x") {
				t.Errorf("Sprintf(%s, %T) = %q: not marked redacted", verb, arg, out)
			}
		}
	}
	if s.String() != kba.Redacted || s.Reveal() != secretValue || s.Len() != len(secretValue) {
		t.Error("String/Reveal/Len")
	}
	if got := fmt.Sprintf("%#v", s); got != `kba.Secret("[redacted]")` {
		t.Errorf("%%#v = %s", got)
	}
	if err := fmt.Errorf("check failed for %v", s); strings.Contains(err.Error(), secretValue) {
		t.Errorf("error leaks: %v", err)
	}
}

func TestSecretJSON(t *testing.T) {
	s := kba.Secret(secretValue)
	b, err := json.Marshal(struct {
		Code kba.Secret   `json:"code"`
		Ptr  *kba.Secret  `json:"ptr"`
		List []kba.Secret `json:"list"`
	}{s, &s, []kba.Secret{s}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secretValue) || string(b) != `{"code":"[redacted]","ptr":"[redacted]","list":["[redacted]"]}` {
		t.Errorf("json = %s", b)
	}
}

func TestSecretZap(t *testing.T) {
	var buf bytes.Buffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.DebugLevel)
	log := zap.New(core)
	s := kba.Secret(secretValue)
	log.Info("answer", zap.Any("any", s), zap.Object("object", s), zap.Stringer("stringer", s), zap.Reflect("reflect", s),
		zap.Any("ptr", &s), zap.Any("customer", *mustAda(t)))
	_ = log.Sync()
	out := buf.String()
	for _, leak := range []string{secretValue, "6789", "2468", "94107"} {
		if strings.Contains(out, leak) {
			t.Errorf("zap output leaks %s: %s", leak, out)
		}
	}
	for _, want := range []string{`"any":{"redacted":true,"len":8}`, `"object":{"redacted":true,"len":8}`,
		`"stringer":"[redacted]"`, `"reflect":"[redacted]"`, `"customer":{"id":"cus_ada"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("zap output lacks %s: %s", want, out)
		}
	}
}

func TestSecretSlog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("answer", "code", kba.Secret(secretValue))
	if out := buf.String(); strings.Contains(out, secretValue) || !strings.Contains(out, `"redacted":true`) {
		t.Errorf("slog output = %s", out)
	}
}

func mustAda(t *testing.T) *kba.Customer {
	t.Helper()
	c, ok := kba.DemoDirectory().ByID("cus_ada")
	if !ok {
		t.Fatal("no cus_ada")
	}
	return c
}
