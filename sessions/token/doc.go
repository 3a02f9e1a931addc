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
//
// RedeemHandler serves POST /v1/tokens/redeem: an agent desktop or CRM, with an agent key,
// exchanges a token for its verified claims once; its jti is consumed in a sessions.Replay
// (shared through Redis when nodes scale out), so a second redemption anywhere gets 409.
//
// Key rotation (RFC 7517 §5 key sets; the JWKS is cacheable for 300 s). Each node loads its
// keys with LoadKeyDir from a directory of *.pem files: the private key whose file name sorts
// last signs, every other key (private, or a "PUBLIC KEY" file) is only published. Name files
// by date, such as 2025-06-01.pem. To rotate:
//
//  1. Publish the new key before it signs: generate it, put its public half (WritePublicKeyFile,
//     e.g. 2025-06-01.pem holding a PUBLIC KEY) in every node's key directory and restart the
//     nodes. Every JWKS now lists it; caches pick it up within 300 s.
//  2. After at least the JWKS cache lifetime (300 s) has passed on every node, replace that file
//     with the private key (same name). It sorts last, so it signs; the old key stays in the
//     directory and in the JWKS, and its tokens still verify and redeem.
//  3. Remove the old key once its last token has expired: the token lifetime (Config.Lifetime,
//     5 min by default) plus the redeem leeway plus the JWKS cache lifetime after step 2.
//
// A node that restarts in the middle of step 2 signs with whichever key its directory holds;
// both are published everywhere since step 1, so every node verifies either.
package token
