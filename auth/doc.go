// Package auth holds sdgate's API keys, per-key rate limits and quotas, and
// usage metering. It knows nothing of HTTP frameworks: the server wraps a
// [Gate] in a few lines and maps its errors to OpenAI's error envelope.
//
// # Request flow
//
//	key, err := gate.Authenticate(ctx, r.Header.Get("Authorization"), r.Header.Get("api-key"))
//	// ... decode the body to learn the model and n ...
//	adm, err := gate.Admit(ctx, key, model, n)
//	adm.Headers.Apply(w.Header().Set) // on every response of an admitted request
//	// ... generate ...
//	err = adm.Finish(ctx, auth.Usage{...}) // before the body is written: durable once it returns
//
// Finish must run exactly once per admitted request, failed and cancelled
// ones included (it ignores ctx's cancellation); calling it before writing
// the response is what makes "a crash after the client saw its image loses
// nothing" hold. Responses that end before Admit (a 400 for a bad body, say)
// still carry the key's rate-limit headers: [Gate.RateHeaders] reads them
// without spending. With auth off, Admit(ctx, nil, ...) meters without a key.
//
// Admin endpoints: [RequireAdmin], [Gate.CreateKey], [Gate.ListKeys],
// [Gate.RevokeKey]; GET /v1/usage: [Gate.Usage]. At start, serve adds
// SDGATE_API_KEYS with [Gate.AddStaticKeys] and asks [Gate.CountKeys]
// whether any key can authenticate.
//
// # Errors and what the server answers
//
// Every error below is matched with errors.Is / errors.As; its Error() text is
// the client-facing message (it never contains a whole key).
//
//	error                     status  type                   code
//	ErrMissingKey             401     invalid_request_error  invalid_api_key
//	ErrInvalidKey             401     invalid_request_error  invalid_api_key
//	ErrRevoked                401     invalid_request_error  invalid_api_key
//	ErrExpired                401     invalid_request_error  invalid_api_key
//	ErrModelNotAllowed        404     invalid_request_error  model_not_found (param "model")
//	*RateLimitError           429     requests               rate_limit_exceeded
//	ErrQuotaExceeded          429     insufficient_quota     insufficient_quota
//	ErrNotAdmin               403     invalid_request_error  insufficient_permissions
//	ErrKeyNotFound            404     invalid_request_error  (admin endpoints: unknown key id)
//	ErrInvalidKeySpec         400     invalid_request_error  (admin endpoints: bad create request)
//	ErrStaticKey              409     invalid_request_error  (revoking a SDGATE_API_KEYS key)
//	anything else             500     server_error           (store failures; log them)
//
// The four 401 causes are wrapped in a *KeyError, whose message masks the key
// the client sent the way OpenAI does ("sk-ab***xyz", see [Mask]).
//
// A model the key may not use answers 404 model_not_found, as OpenAI does for
// models a key cannot see: a 403 would tell a caller that the model exists.
//
// A *RateLimitError carries RetryAfter: set Retry-After (whole seconds, rounded
// up) and retry-after-ms. When TooLarge is set the request alone exceeds a
// per-minute limit and no wait helps: set x-should-retry: false. A
// *QuotaError (which wraps ErrQuotaExceeded) carries ResetAt, the next UTC
// midnight, for the daily quota (the total quota never resets); neither frees
// up within a client's retry window, so set x-should-retry: false.
//
// # Rate-limit headers
//
// OpenAI's names for requests, and the same three for images (in place of
// OpenAI's tokens); a triple is present only when its limit is configured,
// by the key or by Options.DefaultLimits for keys without their own:
//
//	x-ratelimit-limit-requests       requests per minute allowed
//	x-ratelimit-remaining-requests   requests that may be made now
//	x-ratelimit-reset-requests       time until the bucket is full again ("1s", "6m0s")
//	x-ratelimit-limit-images         images per minute allowed
//	x-ratelimit-remaining-images     images that may be asked for now
//	x-ratelimit-reset-images         time until the bucket is full again
//
// # Keys
//
// A key is "sk-" followed by 43 base62 characters drawn from crypto/rand
// (256 bits). The store keeps only its SHA-256: keys carry full entropy, so a
// slow password hash would add latency and no safety. The full key is
// returned once, by [CreateKey]. Authenticate trusts a key it found in the
// store for Options.KeyCacheTTL (1s by default): a key revoked by another
// process (the keys CLI) stops working within that time; [Gate.RevokeKey]
// acts at once.
//
// # Static keys (SDGATE_API_KEYS)
//
// For container-style deployments, [Gate.AddStaticKeys] takes a list of keys
// separated by commas or white space; each entry is
//
//	[NAME:]SECRET[:admin]
//
// e.g. "ci:sk-abc...,ops:sk-def...:admin" or a bare "sk-abc...". Secrets are
// hashed at once and kept only in memory, have no limits, and are listed with
// Static set; they cannot be revoked (remove them from the variable). Their
// ids, "env_" plus 12 hex digits derived from the hash, are stable across
// restarts, so their usage adds up.
//
// # Quotas and metering
//
// Quotas (images per UTC day, total images) are counted in the Gate's memory,
// seeded from the store the first time a key is seen, so two requests racing
// for the last image cannot both pass. The count is exact within one process;
// several sdgate processes sharing one SQLite file would each count on their own.
//
// A store that implements [QuotaReserver] (the [PostgresStore]) counts
// instead, exact across every gateway: [Gate.Admit] reserves in one short
// transaction under a per-key advisory lock, and the usage record written by
// Finish settles the reservation in its own transaction. A reservation that
// nothing settles (its gateway crashed) stops counting after
// [DefaultReservationTTL]; a rate-limited request releases its reservation.
//
// [Admission.Finish] writes one [UsageRecord] per request and returns only
// once it is durable. The SQLite store commits records that arrive together
// in one transaction (group commit) with synchronous=FULL in WAL mode.
package auth
