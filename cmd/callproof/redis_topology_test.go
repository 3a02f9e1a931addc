package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callproof/callproof/sessions/redis/redistest"
)

// sharedNodes returns a starter of nodes of one deployment, each on the Redis URL it is given:
// they share the signing and server keys of the first node started, which is the audit
// writer; later ones are not (each node keeps its own data directory).
func sharedNodes(t *testing.T, mutate func(*Config)) func(url string) *node {
	first := t.TempDir()
	notWriter := false
	started := 0
	return func(url string) *node {
		t.Helper()
		started++
		writer := started == 1
		return startNode(t, func(c *Config) {
			c.Redis = url
			if mutate != nil {
				mutate(c)
			}
			if writer {
				c.Data = first
				return
			}
			c.AuditWriter = &notWriter
			for _, name := range []string{"server-key", "signing-key.pem"} {
				if b, err := os.ReadFile(filepath.Join(first, name)); err == nil {
					os.WriteFile(filepath.Join(c.Data, name), b, 0o600)
				}
			}
		})
	}
}

// Two nodes on a real three-master Redis Cluster behave as one: a call verified on A reaches
// an agent on B with its token; the token redeems once across nodes (also on a node given the
// cluster by one seed address); after a resharding moves the slots of the agent log, audit
// stream, CRM queue and epoch key to other masters, a call on B reaches an agent on A; wrong
// answers on either node lock the account on both; every request reaches the writer's audit
// file and each verification the CRM webhook once; and the data spreads over every shard. So
// the scripts and multi-key commands run under Cluster's same-slot rule and MOVED redirections.
func TestRedisCluster(t *testing.T) {
	began := time.Now()
	cl := redistest.StartCluster(t, 3)
	t.Logf("cluster of 3 masters ready in %v: %s", time.Since(began).Round(time.Millisecond), cl.URL())

	const secret = "crm-secret-0123456789"
	var crmMu sync.Mutex
	var crmEvents []string
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct{ ID, Outcome string }
		_ = json.Unmarshal(body, &ev)
		crmMu.Lock()
		crmEvents = append(crmEvents, ev.ID+" "+ev.Outcome)
		crmMu.Unlock()
	}))
	t.Cleanup(crm.Close)
	start := sharedNodes(t, func(c *Config) { c.CRMWebhookURLs, c.CRMWebhookSecret = []string{crm.URL}, secret })
	a := start(cl.URL()) // the audit writer
	b := start(cl.URL())

	// The agent on B subscribes to every call, then A takes a call.
	conn := dialAgent(t, b.url, "")
	defer conn.Close()
	err, out := a.callCLI(t, "--customer", "cus_ada")
	if err != nil || !strings.Contains(out, "outcome: verified") {
		t.Fatalf("call on node A: %v\n%s", err, out)
	}
	call := callIDFrom(t, out)
	var types []string
	token := ""
	for ended := false; !ended; {
		m := readAgent(t, conn)
		if m.Call != call {
			continue
		}
		types = append(types, m.Type)
		if m.Type == "verified" {
			token = m.Token
		}
		ended = m.Type == "call" && m.State == "ended"
	}
	want := "call,step,step,step,step,step,step,step,verified,call"
	if got := strings.Join(types, ","); got != want || token == "" {
		t.Fatalf("agent on B saw %s (token %t), want %s with the token", got, token != "", want)
	}

	// Single use across nodes: B redeems; A, and a node given one seed and cluster=true, refuse.
	c := start(cl.SeedURL())
	if code := redeem(t, b.url, token); code != http.StatusOK {
		t.Fatalf("first redemption on B: %d", code)
	}
	for name, n := range map[string]*node{"A": a, "C": c} {
		if code := redeem(t, n.url, token); code != http.StatusConflict {
			t.Fatalf("second redemption on %s: %d, want 409", name, code)
		}
	}

	// Resharding under the nodes' feet: the slots of the agent log, the audit stream, the CRM
	// queue and the data generation key (read with every lockout and single-use operation) move
	// to other masters, keys included, while B's agent feed and A's audit reader poll and block
	// on them. The nodes follow the MOVED redirections: an agent on A receives a call taken on
	// B, with its token.
	conn2 := dialAgent(t, a.url, "")
	defer conn2.Close()
	for m := readAgent(t, conn2); m.Call != call || m.Type != "call" || m.State != "ended"; m = readAgent(t, conn2) {
	} // A's subscription is in place: the replay of the first call reached it
	for key, to := range map[string]int{"{agent}": 2, "{audit}": 1, "{webhook}": 0, "callproof:epoch": 2} {
		from := cl.MoveSlot(t, key, to)
		t.Logf("moved the slot of %s from node %d to node %d", key, from, to)
	}
	err, out = b.callCLI(t, "--customer", "cus_chen")
	if err != nil || !strings.Contains(out, "outcome: verified") {
		t.Fatalf("call on node B after the resharding: %v\n%s", err, out)
	}
	call = callIDFrom(t, out)
	for m := readAgent(t, conn2); ; m = readAgent(t, conn2) {
		if m.Call == call && m.Type == "verified" {
			if m.Token == "" {
				t.Fatal("the agent on A received B's verification without its token")
			}
			break
		}
	}

	// Lockouts are shared: three wrong answers, alternating nodes, lock the account on both.
	for i, n := range []*node{a, b, a} {
		err, out := n.callCLI(t, "--customer", "cus_ben", "--answers", "ask_zip=00000")
		if err == nil || !strings.Contains(out, "outcome: not_verified") {
			t.Fatalf("wrong answers %d: %v\n%s", i+1, err, out)
		}
	}
	for name, n := range map[string]*node{"A": a, "B": b} {
		if err, out := n.callCLI(t, "--customer", "cus_ben"); err == nil || !strings.Contains(out, "outcome: locked_out") {
			t.Fatalf("lockout not shared across nodes (on %s): %v\n%s", name, err, out)
		}
	}

	// Every request of every node reaches the writer's chained file through the audit
	// stream: 2 verified, 3 wrong, 2 locked out.
	const requests = 7
	deadline := time.Now().Add(15 * time.Second)
	for a.app.audit.Stats().Appended < requests && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := a.app.audit.Stats().Appended; got != requests {
		t.Fatalf("the writer's audit file has %d records, want the %d requests of both nodes", got, requests)
	}

	// Each verification reached the CRM once, through the queue both nodes share.
	for time.Now().Before(deadline) {
		crmMu.Lock()
		n := len(crmEvents)
		crmMu.Unlock()
		if n >= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a second delivery, if any, would come now
	crmMu.Lock()
	events := append([]string(nil), crmEvents...)
	crmMu.Unlock()
	if len(events) != 2 || !strings.HasSuffix(events[0], " verified") || !strings.HasSuffix(events[1], " verified") ||
		events[0] == events[1] {
		t.Fatalf("CRM webhook received %q, want the two verifications once each", events)
	}

	// The keys spread over every shard: {webhook} on the first node, {audit} on the second,
	// {agent} and the epoch on the third (after the moves), attempt and replay keys anywhere.
	for addr, n := range cl.KeysPerNode(t) {
		if n == 0 {
			t.Errorf("cluster node %s holds no key: the test did not exercise every shard", addr)
		}
	}
	t.Logf("keys per cluster node: %v", cl.KeysPerNode(t))
}

// A node on a real Sentinel set-up (master, replica, three Sentinels) verifies a caller; the
// master crashes. Calls start every 250 ms: while no master answers they fail closed and
// /readyz says 503; once the Sentinels have promoted the replica, calls are verified again
// within seconds and /readyz is back to 200. What the master had is on the new one: a token
// redeemed before the crash stays redeemed, an agent subscribed before it receives the calls
// after it, and their records reach the audit file.
func TestRedisSentinel(t *testing.T) {
	began := time.Now()
	st := redistest.StartSentinel(t)
	t.Logf("Sentinel set-up ready in %v: %s", time.Since(began).Round(time.Millisecond), st.URL())
	n := startNode(t, func(c *Config) { c.Redis = st.URL() })

	answers, _, err := buildAnswers(callOptions{customer: "cus_ada"})
	if err != nil {
		t.Fatal(err)
	}
	callStarted := time.Now()
	rep, err := placeCall(context.Background(), callOptions{server: n.url, agentKey: testAgentKey,
		to: "+18005550199", from: "+14155550100", issuer: "callproof", audience: "callproof-agent"}, answers, io.Discard)
	if err != nil || rep.Outcome != "verified" || rep.Token == "" {
		t.Fatalf("call through Sentinel: %v, outcome %q, token %t", err, rep.Outcome, rep.Token != "")
	}
	healthyCall := time.Since(callStarted)
	if code := redeem(t, n.url, rep.Token); code != http.StatusOK {
		t.Fatalf("redemption before the failover: %d", code)
	}
	if code := readyStatus(n.url); code != http.StatusOK {
		t.Fatalf("/readyz before the failover: %d", code)
	}
	// An agent follows every call on the node through the failover: its subscription is in
	// place once the replay of the first call has reached it.
	conn := dialAgent(t, n.url, "")
	defer conn.Close()
	for m := readAgent(t, conn); m.Call != rep.CallSid || m.Type != "call" || m.State != "ended"; m = readAgent(t, conn) {
	}
	st.WaitSynced(t)

	// From the crash on: /readyz and the Sentinels are sampled every 100 ms, and a call starts
	// every 250 ms until one has been verified (then the ones under way finish).
	type sample struct {
		at       time.Duration
		ready    int
		promoted bool
	}
	type attempt struct {
		start     time.Duration
		verified  bool
		call, out string
		err       error
	}
	var mu sync.Mutex
	var samples []sample
	var attempts []attempt
	stop := make(chan struct{})
	var wg sync.WaitGroup
	killed := time.Now()
	st.KillMaster()
	wg.Go(func() {
		for {
			s := sample{ready: readyStatus(n.url), promoted: st.FailedOver() == nil}
			s.at = time.Since(killed)
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	verified := make(chan struct{}, 1)
	tick := time.NewTicker(250 * time.Millisecond)
	deadline := time.After(30 * time.Second)
	var calls sync.WaitGroup
launch:
	for {
		calls.Go(func() {
			a := attempt{start: time.Since(killed)}
			err, out := n.callCLI(t, "--customer", "cus_ada")
			a.out, a.err = out, err
			// The caller is verified when the server says so. The simulated caller's own agent
			// subscription, made while no master answered, may have been refused (the agent
			// protocol's "unavailable": an agent subscribes again), and then it has no token;
			// the agent subscribed before the crash must have it (checked below).
			if a.verified = strings.Contains(out, "outcome: verified") &&
				(err == nil || strings.Contains(err.Error(), "delivered no token")); a.verified {
				a.call = strings.Fields(out)[1]
				select {
				case verified <- struct{}{}:
				default:
				}
			}
			mu.Lock()
			attempts = append(attempts, a)
			mu.Unlock()
		})
		select {
		case <-verified:
			break launch
		case <-deadline:
			break launch
		case <-tick.C:
		}
	}
	tick.Stop()
	calls.Wait()
	// /readyz is back once calls are.
	for end := time.Now().Add(5 * time.Second); readyStatus(n.url) != http.StatusOK && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	st.WaitFailover(t, 10*time.Second)

	// Recovery: the start of the first verified call after the last that failed (calls started
	// close together may finish in either order).
	slices.SortFunc(attempts, func(a, b attempt) int { return int(a.start - b.start) })
	recovered, failed := time.Duration(-1), 0
	var after []attempt // the verified calls from recovery on
	for _, a := range attempts {
		switch {
		case a.verified:
			if recovered < 0 {
				recovered = a.start
			}
			after = append(after, a)
		case !strings.Contains(a.out, "outcome: technical_difficulty"):
			t.Fatalf("a call during the failover neither was verified nor failed closed: %v\n%s", a.err, a.out)
		default:
			failed++
			recovered, after = -1, nil
		}
	}
	if recovered < 0 {
		t.Fatalf("no call verified within 30 s of the master's crash (%d attempts)", len(attempts))
	}
	// Recovered for good: calls one after the other are verified.
	for range 3 {
		err, out := n.callCLI(t, "--customer", "cus_ada")
		if err != nil || !strings.Contains(out, "outcome: verified") {
			t.Fatalf("a call after the failover: %v\n%s", err, out)
		}
		after = append(after, attempt{verified: true, call: callIDFrom(t, out)})
	}
	var first503, last503, promoted time.Duration = -1, -1, -1
	for _, s := range samples {
		if s.ready != http.StatusOK {
			if first503 < 0 {
				first503 = s.at
			}
			last503 = s.at
		}
		if s.promoted && promoted < 0 {
			promoted = s.at
		}
	}
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	t.Logf("master killed: the Sentinels had promoted the replica %v later; /readyz said 503 from %v to %v "+
		"(sampled every 100 ms); %d calls failed closed, calls started from %v after the crash on were verified "+
		"(a call takes %v with Redis healthy)", ms(promoted), ms(first503), ms(last503), failed, ms(recovered),
		ms(healthyCall))
	if first503 < 0 {
		t.Errorf("/readyz never reported the outage (%d samples)", len(samples))
	}
	if code := readyStatus(n.url); code != http.StatusOK {
		t.Errorf("/readyz after the failover: %d", code)
	}
	const budget = 15 * time.Second // down-after 1 s, then a failover of a few seconds
	if recovered > budget {
		t.Errorf("calls verified again only from %v after the crash, want under %v", recovered, budget)
	}

	// The replay state was replicated: the token redeemed before the crash stays redeemed.
	if code := redeem(t, n.url, rep.Token); code != http.StatusConflict {
		t.Fatalf("redemption after the failover of a token redeemed before: %d, want 409", code)
	}
	// The agent subscribed before the crash receives the calls verified after it, with their
	// tokens, and their records reach the audit file through the stream on the new master.
	want := make(map[string]bool)
	for _, a := range after {
		want[a.call] = true
	}
	for left := len(want); left > 0; {
		m := readAgent(t, conn)
		if want[m.Call] && m.Type == "verified" {
			if m.Token == "" {
				t.Fatal("the agent received a verification after the failover without its token")
			}
			want[m.Call] = false
			left--
		}
	}
	for end := time.Now().Add(10 * time.Second); ; {
		data, _ := os.ReadFile(filepath.Join(n.data, "audit.jsonl"))
		missing := 0
		for _, a := range after {
			if !strings.Contains(string(data), a.call) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%d of the %d calls verified after the failover have no record in the audit file", missing, len(after))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readyz returns the status code of /readyz, or 0 when the node does not answer.
func readyStatus(base string) int {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(base + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
