package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// How long the topologies get to form. Both take about 2 s: a cluster master waits 2 s after
// its start before it reports cluster_state:ok, and Sentinels find each other through hello
// messages sent every 2 s.
const (
	formTimeout = 30 * time.Second
	pollEvery   = 50 * time.Millisecond
)

// Sentinel timing: the master is subjectively down after sentinelDownAfter without a reply,
// and a failover that stalls is retried after sentinelFailoverTimeout, so that a failover takes
// a few seconds rather than the production defaults' minutes.
const (
	sentinelDownAfter       = 1000 * time.Millisecond
	sentinelFailoverTimeout = 3000 * time.Millisecond
)

// Process is one redis-server of a topology (a data node or a Sentinel) on a free loopback
// port, its files in a test temporary directory. It is stopped when the test ends.
type Process struct {
	// Addr is host:port.
	Addr string

	dir string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// startProcess starts redis-server with args (given the chosen ports) on a free port, retrying
// when another process takes the port first. ports says how many free ports args needs (the
// first is the client port); conf, when set, writes a configuration file first and passes its
// path as the first argument (Sentinel needs one it can rewrite).
func startProcess(t testing.TB, ports int, conf func(dir string, ports []int) string, args func(dir string, ports []int) []string) *Process {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redistest: redis-server not found (install it: apt-get install redis-server): %v", err)
	}
	p := &Process{dir: t.TempDir()}
	var err error
	for range 5 { // another process may take a free port before redis-server binds it
		var nums []int
		for range ports {
			var n int
			if n, err = freePort(); err != nil {
				break
			}
			nums = append(nums, n)
		}
		if err != nil {
			continue
		}
		p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(nums[0]))
		var argv []string
		if conf != nil {
			path := filepath.Join(p.dir, "redis.conf")
			if err = os.WriteFile(path, []byte(conf(p.dir, nums)), 0o600); err != nil {
				break
			}
			argv = append(argv, path)
		}
		argv = append(argv, args(p.dir, nums)...)
		if err = p.start(argv); err == nil {
			t.Cleanup(p.Stop)
			return p
		}
	}
	t.Fatalf("redistest: cannot start redis-server: %v", err)
	return nil
}

func (p *Process) start(argv []string) error {
	cmd, done, err := launch(p.Addr, p.dir, argv...)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return nil
}

// Stop stops the process (SIGTERM, then SIGKILL after 5 s) and waits for it. Stopping a
// stopped process does nothing.
func (p *Process) Stop() { p.end(syscall.SIGTERM) }

// Kill kills the process with SIGKILL, as a crash would, and waits for it. Killing a stopped
// process does nothing.
func (p *Process) Kill() { p.end(syscall.SIGKILL) }

func (p *Process) end(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Do sends one command and returns its reply: a string (status or bulk; "" for a null), an
// int64, a []any, or an error (a Redis error reply, or the connection's).
func (p *Process) Do(args ...string) (any, error) { return do(p.Addr, args...) }

// Cluster is a Redis Cluster of private redis-servers, masters only, with the 16384 slots
// split evenly between them.
type Cluster struct {
	// Nodes are the masters; Nodes[i].Addr is Addrs[i].
	Nodes []*Process
	// Addrs are the nodes' host:port addresses, the seeds a client may be given.
	Addrs []string
}

// StartCluster starts a Redis Cluster of the given number of masters (at least 3, as Redis
// Cluster wants) on free loopback ports and returns once every node reports cluster_state:ok and knows every
// other node and every slot. Everything stops when t ends.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 masters, not %d", masters)
	}
	c := &Cluster{}
	busPorts := make([]int, masters)
	for i := range masters {
		p := startProcess(t, 2, nil, func(dir string, ports []int) []string {
			busPorts[i] = ports[1]
			return []string{"--port", strconv.Itoa(ports[0]), "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"),
				"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-port", strconv.Itoa(ports[1]), "--cluster-node-timeout", "2000"}
		})
		c.Nodes, c.Addrs = append(c.Nodes, p), append(c.Addrs, p.Addr)
	}
	const slots = 16384
	for i, p := range c.Nodes {
		first, last := i*slots/masters, (i+1)*slots/masters-1
		// Distinct config epochs, as redis-cli --cluster create gives, spare the nodes the
		// collision resolution.
		mustDo(t, p, "CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1))
		mustDo(t, p, "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(first), strconv.Itoa(last))
	}
	for i, p := range c.Nodes[1:] {
		host, port, _ := net.SplitHostPort(p.Addr)
		mustDo(t, c.Nodes[0], "CLUSTER", "MEET", host, port, strconv.Itoa(busPorts[i+1]))
	}
	want := map[string]string{"cluster_state": "ok", "cluster_slots_assigned": strconv.Itoa(slots),
		"cluster_slots_ok": strconv.Itoa(slots), "cluster_known_nodes": strconv.Itoa(masters)}
	waitFor(t, "every cluster node to report cluster_state:ok", func() error {
		for _, p := range c.Nodes {
			info, err := infoFields(p, "CLUSTER", "INFO")
			if err != nil {
				return err
			}
			for k, v := range want {
				if info[k] != v {
					return fmt.Errorf("%s: %s is %q, want %q", p.Addr, k, info[k], v)
				}
			}
		}
		return nil
	})
	return c
}

// URL is the cluster's address in Callproof's format: redis://first?addr=second&addr=...
func (c *Cluster) URL() string {
	q := url.Values{"addr": c.Addrs[1:]}
	return "redis://" + c.Addrs[0] + "?" + q.Encode()
}

// SeedURL names one seed node and asks for Cluster: redis://first?cluster=true.
func (c *Cluster) SeedURL() string { return "redis://" + c.Addrs[0] + "?cluster=true" }

// KeysPerNode returns how many keys each node holds (DBSIZE), by address: a test shows with it
// that its data spread over the shards.
func (c *Cluster) KeysPerNode(t testing.TB) map[string]int64 {
	t.Helper()
	out := make(map[string]int64, len(c.Nodes))
	for _, p := range c.Nodes {
		v, err := p.Do("DBSIZE")
		n, ok := v.(int64)
		if err != nil || !ok {
			t.Fatalf("redistest: DBSIZE on %s: %v %v", p.Addr, v, err)
		}
		out[p.Addr] = n
	}
	return out
}

// MoveSlot moves the slot of key, with the keys it holds, to Nodes[to], as a resharding does
// (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE), and returns once every node
// knows the new owner. Clients still sending to the old owner get MOVED (ASK while the keys
// move). It returns the index of the node that held the slot.
func (c *Cluster) MoveSlot(t testing.TB, key string, to int) int {
	t.Helper()
	v, err := c.Nodes[0].Do("CLUSTER", "KEYSLOT", key)
	slot, ok := v.(int64)
	if err != nil || !ok {
		t.Fatalf("redistest: CLUSTER KEYSLOT: %v %v", v, err)
	}
	from, err := c.owner(c.Nodes[0], slot)
	if err != nil {
		t.Fatalf("redistest: owner of slot %d: %v", slot, err)
	}
	if from == to {
		return from
	}
	src, dst := c.Nodes[from], c.Nodes[to]
	ids := make([]string, 2)
	for i, p := range []*Process{src, dst} {
		v, err := p.Do("CLUSTER", "MYID")
		if ids[i], _ = v.(string); err != nil || ids[i] == "" {
			t.Fatalf("redistest: CLUSTER MYID on %s: %v %v", p.Addr, v, err)
		}
	}
	n := strconv.FormatInt(slot, 10)
	mustDo(t, dst, "CLUSTER", "SETSLOT", n, "IMPORTING", ids[0])
	mustDo(t, src, "CLUSTER", "SETSLOT", n, "MIGRATING", ids[1])
	host, port, _ := net.SplitHostPort(dst.Addr)
	for {
		v, err := src.Do("CLUSTER", "GETKEYSINSLOT", n, "100")
		if err != nil {
			t.Fatalf("redistest: CLUSTER GETKEYSINSLOT on %s: %v", src.Addr, err)
		}
		keys := asList(v)
		if len(keys) == 0 {
			break
		}
		args := []string{"MIGRATE", host, port, "", "0", "5000", "KEYS"}
		for _, k := range keys {
			args = append(args, fmt.Sprint(k))
		}
		mustDo(t, src, args...)
	}
	mustDo(t, dst, "CLUSTER", "SETSLOT", n, "NODE", ids[1])
	mustDo(t, src, "CLUSTER", "SETSLOT", n, "NODE", ids[1])
	for _, p := range c.Nodes {
		if p != src && p != dst {
			mustDo(t, p, "CLUSTER", "SETSLOT", n, "NODE", ids[1])
		}
	}
	waitFor(t, "every node to know the slot's new owner", func() error {
		for _, p := range c.Nodes {
			if i, err := c.owner(p, slot); err != nil || i != to {
				return fmt.Errorf("%s says node %d owns slot %d (%v)", p.Addr, i, slot, err)
			}
		}
		return nil
	})
	return from
}

// owner returns the index of the node that p says serves slot.
func (c *Cluster) owner(p *Process, slot int64) (int, error) {
	v, err := p.Do("CLUSTER", "NODES")
	if err != nil {
		return -1, err
	}
	text, _ := v.(string)
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		for _, r := range f[8:] {
			lo, hi, isRange := strings.Cut(r, "-")
			if !isRange {
				hi = lo
			}
			a, err1 := strconv.ParseInt(lo, 10, 64)
			b, err2 := strconv.ParseInt(hi, 10, 64)
			if err1 == nil && err2 == nil && a <= slot && slot <= b {
				if i := slices.Index(c.Addrs, addr); i >= 0 {
					return i, nil
				}
				return -1, fmt.Errorf("slot served by unknown node %s", addr)
			}
		}
	}
	return -1, fmt.Errorf("slot %d unassigned", slot)
}

// SentinelMaster is the master name the Sentinel set-up monitors.
const SentinelMaster = "callproof"

// Sentinel is a master, one replica and three Sentinels (quorum 2) watching them, with a
// short down-after (1 s) and failover timeout (3 s).
type Sentinel struct {
	// Master and Replica are the data nodes as started; after a failover Replica is the master.
	Master, Replica *Process
	// Sentinels are the three Sentinels.
	Sentinels []*Process
}

// StartSentinel starts the Sentinel set-up on free loopback ports and returns once the
// replica is in sync and every Sentinel knows the replica and the other Sentinels and can
// authorize a failover. Everything stops when t ends.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s := &Sentinel{}
	data := func(extra ...string) func(dir string, ports []int) []string {
		return func(dir string, ports []int) []string {
			return append([]string{"--port", strconv.Itoa(ports[0]), "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log")}, extra...)
		}
	}
	// No wait for more replicas before a diskless sync (the default waits 5 s).
	s.Master = startProcess(t, 1, nil, data("--repl-diskless-sync-delay", "0"))
	host, port, _ := net.SplitHostPort(s.Master.Addr)
	s.Replica = startProcess(t, 1, nil, data("--replicaof", host, port))
	waitFor(t, "the replica to sync", func() error {
		info, err := infoFields(s.Replica, "INFO", "replication")
		if err != nil {
			return err
		}
		if info["master_link_status"] != "up" {
			return fmt.Errorf("master_link_status %q", info["master_link_status"])
		}
		return nil
	})
	for range 3 {
		p := startProcess(t, 1, func(dir string, ports []int) string {
			// The monitor line comes before the master's other settings.
			return strings.Join([]string{
				"port " + strconv.Itoa(ports[0]),
				"bind 127.0.0.1",
				"dir " + dir,
				"logfile " + filepath.Join(dir, "redis.log"),
				fmt.Sprintf("sentinel monitor %s %s %s 2", SentinelMaster, host, port),
				fmt.Sprintf("sentinel down-after-milliseconds %s %d", SentinelMaster, sentinelDownAfter.Milliseconds()),
				fmt.Sprintf("sentinel failover-timeout %s %d", SentinelMaster, sentinelFailoverTimeout.Milliseconds()),
				fmt.Sprintf("sentinel parallel-syncs %s 1", SentinelMaster),
				"",
			}, "\n")
		}, func(string, []int) []string { return []string{"--sentinel"} })
		s.Sentinels = append(s.Sentinels, p)
	}
	waitFor(t, "the Sentinels to know the replica and each other", func() error {
		for _, p := range s.Sentinels {
			if _, err := p.Do("SENTINEL", "CKQUORUM", SentinelMaster); err != nil {
				return fmt.Errorf("%s: %w", p.Addr, err)
			}
			others, err := p.Do("SENTINEL", "SENTINELS", SentinelMaster)
			if err != nil {
				return err
			}
			if l, _ := others.([]any); len(l) != len(s.Sentinels)-1 {
				return fmt.Errorf("%s knows %d other Sentinels", p.Addr, len(l))
			}
			replicas, err := p.Do("SENTINEL", "REPLICAS", SentinelMaster)
			if err != nil {
				return err
			}
			ok := false
			for _, r := range asList(replicas) {
				f := fieldMap(r)
				if net.JoinHostPort(f["ip"], f["port"]) == s.Replica.Addr && f["flags"] == "slave" {
					ok = true
				}
			}
			if !ok {
				return fmt.Errorf("%s does not see the replica up", p.Addr)
			}
		}
		return nil
	})
	return s
}

// URL is the set-up's address in Callproof's format:
// redis-sentinel://sentinel1/callproof?addr=sentinel2&addr=sentinel3.
func (s *Sentinel) URL() string {
	var addrs []string
	for _, p := range s.Sentinels[1:] {
		addrs = append(addrs, p.Addr)
	}
	return "redis-sentinel://" + s.Sentinels[0].Addr + "/" + SentinelMaster + "?" + url.Values{"addr": addrs}.Encode()
}

// MasterAddr returns the master's address as the first Sentinel that answers reports it.
func (s *Sentinel) MasterAddr() (string, error) {
	var err error
	for _, p := range s.Sentinels {
		var v any
		if v, err = p.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster); err != nil {
			continue
		}
		if l := asList(v); len(l) == 2 {
			h, _ := l[0].(string)
			port, _ := l[1].(string)
			return net.JoinHostPort(h, port), nil
		}
		err = fmt.Errorf("unexpected reply %v", v)
	}
	return "", err
}

// WaitSynced waits until the replica has everything the master had written when it was
// called, so that a test's data survives KillMaster (replication is asynchronous: a crash may
// lose the last writes, as in production).
func (s *Sentinel) WaitSynced(t testing.TB) {
	t.Helper()
	m, err := infoFields(s.Master, "INFO", "replication")
	if err != nil {
		t.Fatalf("redistest: master offset: %v", err)
	}
	target, _ := strconv.ParseInt(m["master_repl_offset"], 10, 64)
	waitFor(t, "the replica to catch up", func() error {
		r, err := infoFields(s.Replica, "INFO", "replication")
		if err != nil {
			return err
		}
		if got, _ := strconv.ParseInt(r["slave_repl_offset"], 10, 64); got < target {
			return fmt.Errorf("replica at offset %d, master was at %d", got, target)
		}
		return nil
	})
}

// KillMaster kills the master with SIGKILL, as a crash would; the Sentinels then promote the
// replica (see WaitFailover).
func (s *Sentinel) KillMaster() { s.Master.Kill() }

// WaitFailover waits, up to timeout, until every Sentinel names the replica as master and the
// replica says it is one, and returns when that was first seen.
func (s *Sentinel) WaitFailover(t testing.TB, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = s.FailedOver(); err == nil {
			return time.Now()
		}
		time.Sleep(pollEvery)
	}
	t.Fatalf("redistest: no failover to %s within %v: %v", s.Replica.Addr, timeout, err)
	return time.Time{}
}

// FailedOver reports, without waiting, whether the failover is done: nil once every Sentinel
// names the replica as master and the replica says it is one.
func (s *Sentinel) FailedOver() error {
	for _, p := range s.Sentinels {
		v, err := p.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster)
		if err != nil {
			return err
		}
		if l := asList(v); len(l) != 2 || fmt.Sprint(l[0])+":"+fmt.Sprint(l[1]) != s.Replica.Addr {
			return fmt.Errorf("%s names %v as master", p.Addr, v)
		}
	}
	info, err := infoFields(s.Replica, "INFO", "replication")
	if err != nil {
		return err
	}
	if info["role"] != "master" {
		return fmt.Errorf("the replica's role is %q", info["role"])
	}
	return nil
}

// mustDo runs a command that must succeed.
func mustDo(t testing.TB, p *Process, args ...string) {
	t.Helper()
	if _, err := p.Do(args...); err != nil {
		t.Fatalf("redistest: %s on %s: %v", strings.Join(args, " "), p.Addr, err)
	}
}

// waitFor polls cond until it returns nil, failing t after formTimeout with its last error.
func waitFor(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(formTimeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: waiting for %s: %v", what, err)
		}
		time.Sleep(pollEvery)
	}
}

// infoFields runs an INFO-style command and returns its "name:value" lines.
func infoFields(p *Process, args ...string) (map[string]string, error) {
	v, err := p.Do(args...)
	if err != nil {
		return nil, err
	}
	text, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("%s: unexpected reply %v", strings.Join(args, " "), v)
	}
	out := make(map[string]string)
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out, nil
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// fieldMap turns a flat [name, value, ...] reply into a map.
func fieldMap(v any) map[string]string {
	out := make(map[string]string)
	l := asList(v)
	for i := 0; i+1 < len(l); i += 2 {
		out[fmt.Sprint(l[i])] = fmt.Sprint(l[i+1])
	}
	return out
}

// do sends one RESP command on a fresh connection and reads the reply.
func do(addr string, args ...string) (any, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return nil, err
	}
	v, err := readReply(bufio.NewReader(c))
	if err != nil {
		return nil, err
	}
	if e, ok := v.(replyError); ok {
		return nil, e
	}
	return v, nil
}

// replyError is an error reply (such as "ERR ..."); inside an array it stays a value.
type replyError string

func (e replyError) Error() string { return string(e) }

func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return replyError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return "", err // a null bulk string
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return []any(nil), err
		}
		out := make([]any, 0, n)
		for range n {
			v, err := readReply(r)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}
