package token

import "errors"

var (
	// ErrBadKey is returned for a signing key file that is not an Ed25519 PKCS#8 PEM key.
	ErrBadKey = errors.New("token: bad signing key")
	// ErrBadConfig is returned by Config.Validate.
	ErrBadConfig = errors.New("token: invalid config")
	// ErrBadClaims is returned by Issue for claims without a subject, call or acr.
	ErrBadClaims = errors.New("token: incomplete claims")
	// ErrMalformed is returned for a token that is not a compact JWS JWT.
	ErrMalformed = errors.New("token: malformed token")
	// ErrAlgorithm is returned for a token whose alg is not EdDSA.
	ErrAlgorithm = errors.New("token: algorithm not allowed")
	// ErrUnknownKey is returned for a token whose kid is missing or not an Ed25519 key in the set.
	ErrUnknownKey = errors.New("token: unknown key id")
	// ErrSignature is returned for a token whose signature does not verify.
	ErrSignature = errors.New("token: invalid signature")
	// ErrExpired is returned for a token whose exp has passed.
	ErrExpired = errors.New("token: expired")
	// ErrNotYetValid is returned for a token whose nbf or iat is in the future.
	ErrNotYetValid = errors.New("token: not yet valid")
	// ErrIssuer is returned for a token from another issuer.
	ErrIssuer = errors.New("token: wrong issuer")
	// ErrAudience is returned for a token meant for another audience.
	ErrAudience = errors.New("token: wrong audience")
	// ErrMissingClaim is returned for a token without exp, sub or jti.
	ErrMissingClaim = errors.New("token: missing claim")
	// ErrJWKS is returned by FetchJWKS when the key set cannot be fetched or parsed.
	ErrJWKS = errors.New("token: cannot fetch key set")
)
