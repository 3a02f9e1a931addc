// Package redis owns Callproof's shared state in Redis: attempt counters and lockouts
// (sessions.Attempts), single-use token ids (sessions.Replay) and the per-call agent message
// log with its cross-node feed (sessions.AgentLog, sessions.AgentWatcher), so that any number
// of nodes behave as one. It is the only package that imports go-redis.
//
// One Config reaches a single server, Sentinel or Cluster through go-redis' UniversalClient
// (with context deadlines honoured and maintenance notifications off, which OSS Redis
// rejects). Every key lives under Config.Prefix (default "callproof:") and has a TTL:
//
//	<prefix>attempts:{<subject>}:fail  failure counter, PEXPIRE = rule window (from the first failure)
//	<prefix>attempts:{<subject>}:lock  lock, value = failures, PX = rule lock time
//	<prefix>replay:<jti>               single-use marker, SET NX PX until the token expires
//	<prefix>{agent}:call:<call>        the call's agent log: a Stream, MAXLEN-capped, PEXPIRE =
//	                                   idle expiry, or the retention once the call ended
//	<prefix>{agent}:calls              sorted set: call -> ms of its latest entry (replay of every
//	                                   call, the feeds' catch-up), pruned past the idle expiry
//	<prefix>{agent}:last               the last event id handed out
//	<prefix>agent:wake                 Pub/Sub channel: "<entry id> <call>" after each append
//
// Subject keys and ids arrive already hashed or non-secret (kba.SubjectKey, a token's jti):
// no caller input is stored. Keys that one Lua script touches share a hash tag, so that each
// script runs on one Cluster slot and is atomic: {subject} for the attempt pair, {agent} for
// the whole agent log (a few messages per call, so one slot carries it easily; the attempt
// and replay keys spread over the cluster). The agent log stores messages as the agent sees
// them, including a verified call's token, for as long as the log is kept.
//
// Agent messages take their stream entry id ("<ms>-<seq>", ms from the Redis clock) as event
// id, and the append script makes each id greater than every id handed out before under the
// prefix, in any call: ids are unique and ordered across calls and nodes (as Memory's are),
// so an agent resumes after an id on any node, for one call or for all. The Pub/Sub
// notification only wakes the feeds, which then read the call's stream from the last id
// they handed out (XRANGE); because Pub/Sub is at-most-once (lost on reconnect), a feed also
// catches up periodically from the index and after every (re)subscription. See Store.Watch.
//
// Every Redis error is returned wrapped with sessions.ErrUnavailable, so callers fail
// closed. go-redis retries a command on a broken connection; a retry of a write whose reply
// was lost can count one failure twice or report a first use as a replay (both err on the
// side of refusing), or show an agent one message twice under two ids.
package redis
