// Package cache makes sure the GPU never computes the same image twice. It
// deals in keys and encoded bytes and imports no package of sdgate's.
//
// # Keys
//
// Params holds everything that determines a response's bytes: the engine
// (build, device, precision), the model and its ModelDigest, prompt and
// negative prompt, seed, steps, guidance, scheduler, generation and output
// size, n, and for edits the strength and the Digest of every input image
// and mask, plus the output format and compression. KeyOf hashes a
// canonical, versioned encoding of it with SHA-256. Fields that do not
// change pixels (user, response_format, stream) are not in Params, so they
// never split entries; an Entry holds encoded bytes, which serve b64_json
// and url alike.
//
// # Policy
//
// A request that names a seed is deterministic and always cacheable. One
// without a seed computes every time, unless Options.PromptCaching is on:
// then it is looked up by its other parameters, and on a miss the images
// made with a freshly drawn seed are stored, so popular prompts come from
// the cache with the seed that was used. In that mode the result is also
// stored under the key of the seed that was drawn, so a client that repeats
// the request naming the seed it was given gets a hit too.
//
// Identical cacheable requests in flight at the same time compute once;
// the others wait for that result (Outcome Coalesced). A waiter whose
// context ends returns at once without cancelling the computation, which
// is cancelled only when no caller waits any more. Errors are not cached.
//
// # Stores
//
// Memory (the default) is an in-process LRU from golang-lru/v2 bounded by
// bytes (DefaultMaxBytes: 1/8 of RAM, 64 MiB .. 8 GiB). Redis shares one
// cache between several instances behind a load balancer; entries expire
// after a TTL and the Redis server's maxmemory policy bounds its bytes.
//
// # Server integration
//
// server/produce.go is the one caller: it builds Params from the validated
// request and its plan (cacheParams; ModelDigest is the model folder's
// Info.Digest from the models package), and moves generation and encoding
// into the compute function that Do runs on a miss, so a hit costs neither.
//
// HasSeed must say whether the client named a seed, even though the plan
// always carries one (drawn when absent). Stats feeds /metrics: hits,
// misses, coalesced, evictions, bytes, entries. A nil *Cache caches nothing,
// so "cache off" needs no branch in the handler.
package cache
