// Package browsertest drives the playground and dashboard pages (package web,
// served by package server) in a real headless Chromium against a real
// server on a tiny synthetic model. It holds only tests: the tests skip,
// saying how to get it, when no chromium binary or ONNX Runtime library is
// found (scripts/ci-deps.sh installs Debian's chromium; make deps the
// library).
//
//	go test ./server/browsertest
//	go test ./server/browsertest -run TestScreenshots -args -screenshots ../../docs
package browsertest
