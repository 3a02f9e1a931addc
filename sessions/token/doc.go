// Package token owns the verification token handed to the agent: an RFC 7519 JWT signed with
// Ed25519 (JWS alg "EdDSA", RFC 8037 §3.1), its signing key on disk, the JWKS that publishes
// the public key (RFC 7517 §5) and the checks an integrator runs on a token it receives.
//
// The key id is the base64url RFC 7638 SHA-256 thumbprint of the public key, so the same key
// always gets the same kid. Keys are stored as PKCS#8 PEM (RFC 5208, RFC 8410 for Ed25519).
//
// Claims: iss, sub (customer id), aud, iat, nbf, exp, jti (RFC 7519 §4.1), plus call, acr,
// amr (RFC 8176 values), ccpa_request, data_points (names only), declaration, ani_match,
// verstat and request_id (sessions.Claims). No claim carries an answer value.
//
// Verify requires alg EdDSA, a kid found in the key set, an exp that has not passed, an nbf
// that has, and the expected iss and aud: an integrator gets a yes or a sentinel error.
// Tokens are bearer credentials: never log one; log its jti.
package token
