package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/callproof/callproof/sessions"
)

const (
	// maxCallLen bounds call ids (platform call ids are far shorter).
	maxCallLen = 256
	// entryField is the stream entry field holding the message JSON.
	entryField = "m"
	// pipelineBatch bounds the commands sent in one pipeline.
	pipelineBatch = 256
	// indexPruneEvery is how often a node trims stale calls from the index.
	indexPruneEvery = time.Minute
)

// The agent log's keys share the hash tag {agent}: one Cluster slot, so that one script can
// append, index and number atomically. (Agent logs are a few messages per call; the attempt
// and replay keys stay spread over the cluster.)
func (s *Store) streamKey(call string) string { return s.prefix + "{agent}:call:" + call }

// appendScript adds one message. Its entry id is "<ms>-<seq>" with ms from the Redis clock
// (TIME), and is greater than every id handed out before under this prefix, in any call's
// stream: event ids are unique and ordered across calls, as Memory's are.
//
// KEYS: stream, index (sorted set), last id (string).
// ARGV: maxlen, message JSON, stream TTL ms, call, index TTL ms, channel, prune-before ms (0: none).
var appendScript = goredis.NewScript(`
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seq = 0
local function after(id)
  local m, q = string.match(id or '', '^(%d+)-(%d+)$')
  m, q = tonumber(m), tonumber(q)
  if m and (m > ms or (m == ms and q >= seq)) then ms, seq = m, q + 1 end
end
after(redis.call('GET', KEYS[3]))
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if top[1] then after(top[1][1]) end
local id = string.format('%.0f-%.0f', ms, seq)
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], id, 'm', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[3], id, 'PX', ARGV[5])
redis.call('ZADD', KEYS[2], 'GT', string.format('%.0f', ms), ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
if tonumber(ARGV[7]) > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[7])
end
redis.call('PUBLISH', ARGV[6], id .. ' ' .. ARGV[4])
return id
`)

// Append implements sessions.AgentLog in one Lua script: the message goes to its call's
// stream (MAXLEN-capped, PEXPIRE the idle expiry, or the retention for a "call ended"
// message) under a fresh event id, the call is indexed by that id's milliseconds, and
// "<id> <call>" is published for the nodes' feeds. The returned copy carries the id.
func (s *Store) Append(ctx context.Context, m sessions.AgentMessage) (sessions.AgentMessage, error) {
	if err := ctx.Err(); err != nil {
		return sessions.AgentMessage{}, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if m.Type == "" || m.Call == "" {
		return sessions.AgentMessage{}, fmt.Errorf("%w: type and call are required", sessions.ErrBadMessage)
	}
	if len(m.Call) > maxCallLen {
		return sessions.AgentMessage{}, fmt.Errorf("%w: call id longer than %d bytes", sessions.ErrBadMessage, maxCallLen)
	}
	now := s.now()
	if m.At.IsZero() {
		m.At = now
	}
	m.ID = ""
	m.AMR = slices.Clone(m.AMR)
	stored := m
	if s.sealer != nil && m.Token != "" {
		stored.Token = s.sealer.seal(m.Token, m.Call)
	}
	data, err := json.Marshal(stored)
	if err != nil {
		return sessions.AgentMessage{}, fmt.Errorf("%w: %v", sessions.ErrBadMessage, err)
	}
	ttl := s.idle
	if m.Type == sessions.TypeCall && m.State == sessions.StateEnded {
		ttl = s.retention
	}
	pruneBefore := int64(0)
	if last := s.prunedAt.Load(); now.UnixMilli()-last >= indexPruneEvery.Milliseconds() &&
		s.prunedAt.CompareAndSwap(last, now.UnixMilli()) {
		pruneBefore = now.Add(-s.idle - time.Minute).UnixMilli()
	}
	id, err := appendScript.Run(ctx, s.rdb, []string{s.streamKey(m.Call), s.indexKey, s.lastKey},
		s.maxPerCall, data, ms(ttl), m.Call, ms(s.idle+time.Minute), s.wakeChannel, pruneBefore).Text()
	if err != nil {
		return sessions.AgentMessage{}, s.fail("append", err)
	}
	if _, err := sessions.ParseEventID(id); err != nil {
		return sessions.AgentMessage{}, s.fail("append", err)
	}
	m.ID = id
	return m, nil
}

// Since implements sessions.AgentLog: XRANGE of the call's stream after afterID; for call ""
// the calls indexed with an entry at or after afterID's millisecond (at most the
// WithMaxReplayCalls most recent), each read after afterID, merged in event id order.
func (s *Store) Since(ctx context.Context, call, afterID string) ([]sessions.AgentMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	start := "-"
	var after sessions.EventID
	if afterID != "" {
		var err error
		if after, err = sessions.ParseEventID(afterID); err != nil {
			return nil, err
		}
		start = "(" + after.String()
	}
	if call != "" {
		if len(call) > maxCallLen {
			return nil, nil
		}
		res, err := s.rdb.XRange(ctx, s.streamKey(call), start, "+").Result()
		if err != nil {
			return nil, s.fail("since", err)
		}
		return s.decode(call, res), nil
	}
	min := strconv.FormatInt(s.now().Add(-s.idle-time.Minute).UnixMilli(), 10)
	if afterID != "" {
		min = strconv.FormatInt(after.Millis, 10)
	}
	calls, err := s.rdb.ZRevRangeByScore(ctx, s.indexKey, &goredis.ZRangeBy{
		Min: min, Max: "+inf", Count: s.maxReplayCalls}).Result()
	if err != nil {
		return nil, s.fail("since", err)
	}
	type entry struct {
		id  sessions.EventID
		msg sessions.AgentMessage
	}
	var all []entry
	for batch := range slices.Chunk(calls, pipelineBatch) {
		cmds := make([]*goredis.XMessageSliceCmd, len(batch))
		if _, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, c := range batch {
				cmds[i] = p.XRange(ctx, s.streamKey(c), start, "+")
			}
			return nil
		}); err != nil {
			return nil, s.fail("since", err)
		}
		for i, cmd := range cmds {
			for _, m := range s.decode(batch[i], cmd.Val()) {
				id, _ := sessions.ParseEventID(m.ID)
				all = append(all, entry{id, m})
			}
		}
	}
	slices.SortFunc(all, func(a, b entry) int { return a.id.Compare(b.id) })
	out := make([]sessions.AgentMessage, len(all))
	for i, e := range all {
		out[i] = e.msg
	}
	return out, nil
}

// decode turns stream entries into messages whose ID is the entry id. An entry that does not
// decode (written by something else) is skipped and logged by id only.
func (s *Store) decode(call string, entries []goredis.XMessage) []sessions.AgentMessage {
	out := make([]sessions.AgentMessage, 0, len(entries))
	for _, e := range entries {
		var m sessions.AgentMessage
		data, ok := e.Values[entryField].(string)
		if !ok || json.Unmarshal([]byte(data), &m) != nil || m.Type == "" {
			s.log.Warn("agent log: skipping an entry that does not decode", zap.String("id", e.ID))
			continue
		}
		if _, err := sessions.ParseEventID(e.ID); err != nil {
			continue
		}
		m.ID, m.Call = e.ID, call
		if m.Token != "" {
			tok, err := s.sealer.open(m.Token, call)
			if err != nil {
				s.log.Error("agent log: a token does not unseal (do all nodes share the server key?): delivered without it",
					zap.String("call", call), zap.String("id", e.ID))
			}
			m.Token = tok
		}
		out = append(out, m)
	}
	return out
}
