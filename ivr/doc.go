// Package ivr owns the per-call verification flow: welcome, language and request menus,
// identification, the questions the CCPA policy needs, the decision and the hand-off to the
// agent. It collects digits (first-digit and inter-digit timeouts, '#' to finish, a maximum
// length, no_input and invalid_input re-prompts, barge-in) and maps every failure to the prompt
// the caller hears and the reason the agent sees.
//
// ivr imports only the root packages of media, prompts, kba and sessions; transports, token
// signing, agent delivery and stores come in through small interfaces declared here.
package ivr
