package main

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// scrape returns the samples of a Prometheus text exposition, keyed by name{labels}.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsCountDigitsStoresAndAgentDeliveries(t *testing.T) {
	n := startNode(t, func(c *Config) { c.Admin = "127.0.0.1:0" })
	admin, err := n.app.ListenAdmin()
	if err != nil {
		t.Fatal(err)
	}
	before := scrape(t, n.url+"/metrics")
	if err, out := n.callCLI(t, "--customer", "cus_ada"); err != nil {
		t.Fatalf("call with digit events: %v\n%s", err, out)
	}
	if err, out := n.callCLI(t, "--customer", "cus_ada", "--dtmf", "inband"); err != nil {
		t.Fatalf("call with in-band digits: %v\n%s", err, out)
	}
	after := scrape(t, "http://"+admin.String()+"/metrics") // the admin listener serves the same registry
	grew := func(key string, least float64) {
		t.Helper()
		if _, ok := after[key]; !ok {
			t.Fatalf("metric %s missing", key)
		}
		if d := after[key] - before[key]; d < least {
			t.Errorf("%s grew by %v, want at least %v", key, d, least)
		}
	}
	// cus_ada keys an account number, a date of birth and a ZIP, each ended by #.
	grew(`callproof_digits_total{source="event"}`, 10)
	grew(`callproof_digits_total{source="inband"}`, 10)
	grew(`callproof_frames_in_total`, 100)
	grew(`callproof_calls_total{outcome="verified",transport="twilio"}`, 2)
	grew(`callproof_agent_messages_total{state="published"}`, 2)
	for _, key := range []string{`callproof_store_errors_total{store="attempts"}`, `callproof_store_errors_total{store="replay"}`,
		`callproof_store_errors_total{store="agent_log"}`, `callproof_store_errors_total{store="audit"}`,
		`callproof_dropped_total{what="event"}`, `callproof_frames_late_total`, `callproof_agent_slow_disconnects_total`} {
		// The frame and event counters are process-wide: compare with before, as earlier
		// tests in this binary (a digit flood, paced legs under load) may have moved them.
		if v, ok := after[key]; !ok || v != before[key] {
			t.Errorf("%s = %v (present %v), want %v as before these calls", key, v, ok, before[key])
		}
	}
}

func TestAdminListenerServesProfilesOnlyThere(t *testing.T) {
	n := startNode(t, func(c *Config) { c.Admin = "127.0.0.1:0" })
	admin, err := n.app.ListenAdmin()
	if err != nil {
		t.Fatal(err)
	}
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("http://" + admin.String() + "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Errorf("admin goroutine profile: %d %.200q", code, body)
	}
	if code, body := get("http://" + admin.String() + "/debug/pprof/heap?debug=1"); code != 200 || !strings.Contains(body, "heap profile") {
		t.Errorf("admin heap profile: %d %.200q", code, body)
	}
	if code, _ := get(n.url + "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("main listener /debug/pprof/: %d, want 404", code)
	}
}

func TestAdminOffByDefault(t *testing.T) {
	n := startNode(t, nil)
	if addr, err := n.app.ListenAdmin(); addr != nil || err != nil {
		t.Fatalf("ListenAdmin without an address: %v, %v", addr, err)
	}
	if err := (&Config{HTTP: ":0", Admin: "nonsense"}).finish(true); err == nil || !strings.Contains(err.Error(), "admin address") {
		t.Errorf("bad admin address: %v", err)
	}
}
