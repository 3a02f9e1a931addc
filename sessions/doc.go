// Package sessions owns the state of a verification that outlives one goroutine or one node:
// attempt counters and lockouts, the claims a verified caller's token carries, and the per-call
// log of messages delivered to agents.
//
// The root package holds the types and interfaces the call flow depends on (Attempts, Replay,
// Issuer, Publisher, AgentLog and its cross-node AgentWatcher/AgentFeed) and Memory, the
// embedded in-memory implementation of the stores, used when no Redis is configured. Implementations that need a heavy dependency live in sub-packages named after it:
// sessions/token (JOSE signing with go-jose, RFC 7519 / RFC 8037), sessions/agent (the agent
// WebSocket hub with gorilla/websocket) and sessions/redis. The root imports no other project
// package and no heavy dependency; deps_test.go keeps it so.
//
// Keys handed to Attempts are already hashed by the caller (kba.SubjectKey); no implementation
// ever sees or stores raw caller input. A store that cannot be reached returns ErrUnavailable
// and callers fail closed: nobody is verified on unknown state.
package sessions
