// Package reliability is sdgate's hostile-input and fault suite: each probe
// of issue 19 as a test against the real stack on loopback (gin server,
// SQLite key store, models registry and queue, connection caps and the
// timeouts serve uses), with its expected answer and a measured bound
// (time, RSS, open connections). Only the pipeline is a stand-in, so the
// suite needs neither cgo nor ONNX Runtime and runs in `make test`;
// `make chaos` runs it with heavier loads and prints the probe table
// docs/reliability.md quotes. The signal probes (SIGKILL and SIGTERM
// under load) are the exception: they build the real binary once and run
// `sdgate serve` on a synthesized tiny model, skipping without ONNX
// Runtime.
package reliability
