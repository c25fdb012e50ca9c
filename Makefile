# sdgate — build, test and run. `make test` and `make run` do all the set-up.

ORT_VERSION   := 1.30.0
ORT_NPM       := onnxruntime-node-$(ORT_VERSION).tgz
ORT_NPM_SHA   := 6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
ORT_LIB_SHA   := ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
ORT_LIB       := lib/libonnxruntime.so.$(ORT_VERSION)
CACHE_DIR     ?= $(HOME)/.cache/sdgate
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GO            ?= go
# ADDR: `make run ADDR=host:port` or SDGATE_ADDR=host:port make run (the
# command line wins); the flag below would otherwise override SDGATE_ADDR.
ADDR          ?= $(or $(SDGATE_ADDR),127.0.0.1:8080)
MODELS        ?= ./models
PREFIX        ?= /usr/local
DESTDIR       ?=

.PHONY: deps build test run bench lint clean install chaos cluster

deps: $(ORT_LIB)

# libonnxruntime comes out of the onnxruntime-node npm package (npm pack, never
# npm install: its postinstall reaches hosts we cannot). Both the tarball and the
# library are checksum-verified; the tarball is cached outside the repo.
$(ORT_LIB):
	@mkdir -p $(CACHE_DIR) lib
	@if ! echo "$(ORT_NPM_SHA)  $(CACHE_DIR)/$(ORT_NPM)" | sha256sum -c --status 2>/dev/null; then \
		echo "fetching onnxruntime-node@$(ORT_VERSION) with npm pack"; \
		cd $(CACHE_DIR) && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null; \
	fi
	@echo "$(ORT_NPM_SHA)  $(CACHE_DIR)/$(ORT_NPM)" | sha256sum -c --quiet
	@tar -xzf $(CACHE_DIR)/$(ORT_NPM) -O package/bin/napi-v6/linux/x64/libonnxruntime.so.1 > $@.tmp
	@echo "$(ORT_LIB_SHA)  $@.tmp" | sha256sum -c --quiet
	@mv $@.tmp $@ && ln -sf libonnxruntime.so.$(ORT_VERSION) lib/libonnxruntime.so
	@echo "ONNX Runtime $(ORT_VERSION) -> $@"

build: deps
	$(GO) build -o bin/sdgate ./cmd/sdgate

# The API layers and the model registry must build without cgo (the seam
# to ONNX Runtime is models.Pipeline): vet them with cgo off first.
test: deps
	CGO_ENABLED=0 $(GO) vet ./server ./compat ./models/...
	$(GO) test -race -timeout 30m ./...
	bash scripts/gpu/test.sh

# -p 1: one package at a time, so benchmarks do not share the cores.
# The reliability suite (internal/reliability) with heavier loads; it
# prints one table: probe, expected, observed, pass. make test runs the
# same probes at their light settings.
chaos:
	cd internal/reliability && $(GO) test -count=1 -timeout 10m -args -chaos

bench: deps
	$(GO) test -p 1 -run '^$$' -bench . -benchtime 3x -timeout 60m ./...

# cluster: nats-server, PostgreSQL, Redis, two workers and two gateways on
# the tiny model (scripts/cluster.sh); Ctrl-C stops it.
cluster: build
	bash scripts/cluster.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./server ./compat ./models/...
	$(GO) run $(STATICCHECK) ./...

# install: the binary, ONNX Runtime beside it (PREFIX/lib/sdgate), the
# hardened units (serve; gateway and worker@GPU for scale-out), the
# sysusers.d entry and an example environment file.
install: build
	install -Dm755 bin/sdgate $(DESTDIR)$(PREFIX)/bin/sdgate
	install -Dm644 $(ORT_LIB) $(DESTDIR)$(PREFIX)/lib/sdgate/libonnxruntime.so.$(ORT_VERSION)
	ln -sf libonnxruntime.so.$(ORT_VERSION) $(DESTDIR)$(PREFIX)/lib/sdgate/libonnxruntime.so
	install -d $(DESTDIR)/etc/systemd/system $(DESTDIR)/etc/sdgate
	for u in sdgate.service sdgate-gateway.service sdgate-worker@.service; do \
		sed -e 's#/usr/local/bin/sdgate#$(PREFIX)/bin/sdgate#' -e 's#/usr/local/lib/sdgate#$(PREFIX)/lib/sdgate#' \
			systemd/$$u > $(DESTDIR)/etc/systemd/system/$$u || exit 1; \
	done
	install -m644 systemd/sdgate.env.example $(DESTDIR)/etc/sdgate/sdgate.env.example
	install -Dm644 systemd/sdgate.sysusers $(DESTDIR)/usr/lib/sysusers.d/sdgate.conf

# run: serve on $(ADDR) (SDGATE_ADDR or ADDR=, default 127.0.0.1:8080). With no model configured (SDGATE_MODELS unset and
# nothing in ./models) it first writes the tiny synthetic model to
# models/demo; on first start it creates a local API key (data/local-key).
run: build
	@if [ -z "$$SDGATE_MODELS" ] && [ ! -f models/demo/model_index.json ]; then \
		bin/sdgate synth --preset tiny --out models/demo; fi
	@mkdir -p data
	@if [ ! -s data/local-key ]; then bin/sdgate keys create --name local --data ./data > data/local-key; fi
	@echo "sdgate on http://$(ADDR), API key (also in data/local-key): $$(cat data/local-key)"
	@echo "try:"
	@echo "  curl http://$(ADDR)/v1/images/generations -H \"Authorization: Bearer $$(cat data/local-key)\" \\"
	@echo "    -H 'Content-Type: application/json' -d '{\"model\": \"dall-e-2\", \"prompt\": \"a lighthouse at dusk\", \"size\": \"256x256\"}'"
	bin/sdgate serve --addr $(ADDR) --models $${SDGATE_MODELS:-$(MODELS)} --data ./data

clean:
	rm -rf bin lib

# Refreshes docs/playground.png and docs/dashboard.png in headless Chromium.
.PHONY: screenshots
screenshots: deps
	$(GO) test -count=1 -run TestScreenshots ./server/browsertest -args -screenshots $(CURDIR)/docs
