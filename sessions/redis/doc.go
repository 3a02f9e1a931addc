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
//	<prefix>epoch                      this Redis's data generation (random), PEXPIRE 7 days,
//	                                   renewed by every node each minute
//	<prefix>restoring                  present (PX the restore grace) while nodes write back
//	                                   what Redis lost
//
// Subject keys and ids arrive already hashed or non-secret (kba.SubjectKey, a token's jti):
// no caller input is stored. Keys that one Lua script touches share a hash tag, so that each
// script runs on one Cluster slot and is atomic: {subject} for the attempt pair, {agent} for
// the whole agent log (a few messages per call, so one slot carries it easily; the attempt
// and replay keys spread over the cluster). The agent log stores messages as the agent sees
// them, for as long as the log is kept, except a verified call's token: with WithSealKey (a
// key every node shares) it is stored sealed with AES-256-GCM and opened as it is read back,
// so no token sits in Redis in clear.
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
//
// # When Redis is down
//
// New makes a Store without touching the network and Connect makes the first contact, so a
// node can start while Redis is down. Every operation then fails with sessions.ErrUnavailable
// (within the dial timeout: a refused connection fails at once) and callers fail closed.
// Each Store runs a monitor that checks Redis every health interval (and at once after a
// failed operation) and reports its Status (up, down, restoring) through Status, OnStatus
// and Ready; go-redis reconnects by itself, so service returns without a restart.
//
// # When Redis loses its data
//
// A Redis without persistence that restarts (or a flush, or a failover to an empty replica)
// comes back empty: lockouts and failure counts, single-use token ids and spent authenticator
// codes, agent logs, queued audit records and CRM deliveries are gone. Taking that empty state
// for the truth would let someone through: a locked account could try again, a redeemed
// token could be redeemed again. So:
//
//   - The epoch key marks the data's generation. Check, Fail, Reset and Consume run in one
//     pipeline behind a read of the epoch and of the restoring flag (on one connection, so
//     both see the same data); when the epoch is not the one this node last saw, or a restore
//     is under way, the answer is not used and the operation fails with ErrStateLost (which
//     matches sessions.ErrUnavailable): the caller hears technical_difficulty, a redemption
//     gets 503. A failure Fail took on the empty Redis is still counted (below).
//   - Every node keeps in memory what it last saw of each subject it touched (failure count
//     and window, lock and its end) and the ids it consumed, until they expire, up to
//     WithMirrorSize entries of each. The first node to notice the loss raises the restoring
//     flag for the restore grace, creates the new epoch and writes back what it holds; every
//     other node notices within its health interval (or its next operation) and does the
//     same. Writes never lower what Redis has: a count takes the highest any node saw, a lock
//     the longest. Each node also appends again the audit records it appended in the last ten
//     minutes (up to 1,024): the writer drops those it already had, by id.
//   - After the grace (DefaultRestoreGrace, 3 s; it must exceed every node's health interval)
//     operations work again: within seconds of Redis coming back, and on the restored state.
//
// What is not restored: agent logs (agents miss the messages of calls before the loss that
// they had not received; new messages keep ordered ids), queued CRM deliveries, and whatever
// only a node that is itself gone (or cut off from Redis for longer than the grace) held. A
// node that starts while Redis is down holds nothing and cannot tell a fresh Redis from an
// emptied one: if it creates the epoch, it raises the restoring flag so that the nodes that
// hold state get the grace. A node that connects at start-up to a Redis without an epoch takes
// it as fresh. With Redis Cluster the epoch lives on one shard: the loss of another shard is
// not noticed. Run Redis with persistence (appendonly yes) where a restart must lose nothing
// at all; replicas promoted by Sentinel keep the epoch and lose only the writes they had not
// received.
package redis
