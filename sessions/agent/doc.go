// Package agent owns delivery of call summaries to agent desktops: the Hub that stores each
// message in the call's log and pushes it to subscribed agents, and the WebSocket endpoint
// GET /v1/agent (RFC 6455) they connect to.
//
// Agents authenticate before the upgrade with an agent key (Authorization: Bearer KEY, or the
// access_token query parameter for browsers, which cannot set headers on a WebSocket). A
// browser's Origin must be the server's own or on the configured allow-list.
//
// Client messages:
//
//	{"type":"subscribe","call":"CA..."}             one call
//	{"type":"subscribe","all":true}                 every live or recently ended call
//	{"type":"subscribe","call":"CA...","after":"1740830400000-3"}  resume after an event id
//
// On subscribe the server first replays what the log holds for the subscription (after the
// given event id, if any), then streams new messages as they are published: in order, with no
// gap and no duplicate. Server messages are sessions.AgentMessage JSON (type call, step,
// verified, not_verified) and {"type":"error","reason":"..."} for a client message it cannot
// act on. Each message carries its event id ("id"), so an agent that reconnects resumes with
// "after". Besides, a node tells the agents connected to it about itself with Status messages
// ({"type":"status","state":"degraded","reason":"state_store_unavailable",...}, then
// {"type":"status","state":"ok",...}): not stored in the log, which may be what is down, so
// without an id and never replayed; sent on each change (SetStatus), and on connect while
// degraded.
//
// Each connection has one reader (the handler goroutine) and one writer goroutine fed by a
// bounded queue. Publishing never blocks on an agent: an agent that falls more than the queue
// behind is disconnected with close code 1013 (try again later) and resumes with "after".
// Malformed JSON closes that connection with 1007, a binary frame with 1003, an oversize
// message with 1009; nothing else is affected. Close lets the messages already stored through
// the hub reach the agents (briefly), sends 1001 to every agent and waits for all connection
// goroutines.
package agent
