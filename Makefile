# The two README commands are `make up` and `make test`; the rest are steps they are made of.
PRESET ?= release
JOBS ?= $(shell nproc)
BUILD := build/$(PRESET)

.PHONY: all deps build test up bench asan-test tsan-test fuzz-build format format-check clean

all: build

deps:
	@scripts/deps.sh all

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET) -j $(JOBS)

# Libraries the fuzz targets drive, built with clang and libFuzzer in build/fuzz. No -g: clang 14
# fails on coroutine frames with debug info ("Cannot represent a difference across sections").
fuzz-build: deps
	@cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DMILLIONS_FUZZ=ON >/dev/null
	@cmake --build build/fuzz -j $(JOBS) --target fuzz_http_request fuzz_json_bodies fuzz_resp fuzz_http_head \
	  fuzz_http_cache fuzz_edge_store fuzz_logs fuzz_dns_message fuzz_graphs fuzz_image_header fuzz_scenario

format-check:
	@scripts/format.sh --check

format:
	@scripts/format.sh

# The whole suite: unit, API, restart, browser and fuzz tests. Ends with ctest's summary.
test: build fuzz-build format-check
	@cd tests/e2e && (test -d node_modules/playwright-core || npm install --no-audit --no-fund --silent)
	@ctest --test-dir $(BUILD) --output-on-failure -j 2 --timeout 600

# The same unit and API tests under AddressSanitizer and UndefinedBehaviorSanitizer.
asan-test: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)
	@ctest --test-dir build/asan --output-on-failure -j 2 --timeout 600 -LE "browser|fuzz|slow"

# The unit tests whose code runs on several threads (thread pools, io threads, the pipelined Redis
# client, queues, the balancer's health state, lock-free snapshots, the edge's object store and
# its disk writer, the DNS server's published zone) under ThreadSanitizer.
TSAN_TESTS := core_test cache_test redis_client_test queue_test lb_test data_test edge_store_test dns_test
tsan-test: deps
	@cmake --preset tsan >/dev/null
	@cmake --build --preset tsan -j $(JOBS) --target $(TSAN_TESTS)
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 $(TSAN_OPTIONS)" \
	  ctest --test-dir build/tsan --output-on-failure -j 2 --timeout 600 \
	  -R '^($(subst $(eval) ,|,$(TSAN_TESTS)))$$'

# The default topology (topologies/local.toml) under `millions up`; TOPOLOGY=... for another.
up: build
	@scripts/up.sh

bench: build
	@bench/single.sh

clean:
	rm -rf build
