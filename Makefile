# Two commands matter: `make run` (otad on embedded storage) and `make test` (everything,
# emulators included; installs the pinned tools it needs).
SHELL := /bin/bash
GO ?= go
FUNCTIONS := check confirm stats upload admin patch
LAMBDA_FLAGS := -trimpath -ldflags "-s -w" -tags lambda.norpc

include sam.mk

.PHONY: run test test-short vet build sizes deploy emulators emulators-stop bench soak tools clean install

run: ## start otad on ./.ota-data and print the quickstart
	$(GO) run ./cmd/otad --data ./.ota-data --addr 127.0.0.1:8080

install: ## go install ota and otad (into GOBIN, else GOPATH/bin)
	$(GO) install ./cmd/ota ./cmd/otad

test: ## every test, with DynamoDB Local, versitygw and @capgo/cli installed and started here
	bash infra/test.sh

test-short: ## unit tests only (no emulators; emulator tests skip outside CI)
	$(GO) test ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

build: ## Lambda binaries: .build/<function>/bootstrap (linux/arm64, provided.al2023)
	@for f in $(FUNCTIONS); do \
		GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o .build/$$f/bootstrap ./functions/$$f || exit 1; \
	done

sizes: build ## size of each Lambda binary (goal: under 10 MiB each)
	@for f in $(FUNCTIONS); do printf '%-8s %6.2f MiB\n' $$f $$(echo "scale=2; $$(stat -c %s .build/$$f/bootstrap)/1048576" | bc); done

deploy: ## needs the AWS SAM CLI and credentials (docs/aws.md)
	sam build --build-in-source && sam deploy --guided

emulators: ## start DynamoDB Local and versitygw, install the Lambda emulator, for manual test runs
	bash infra/emulators/dynamodb-local.sh install && bash infra/emulators/dynamodb-local.sh start 8000
	bash infra/emulators/versitygw.sh install && bash infra/emulators/versitygw.sh start 7070
	bash infra/emulators/lambda-rie.sh install
	@echo "export OTA_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:8000 OTA_TEST_S3_ENDPOINT=http://127.0.0.1:7070 OTA_TEST_LAMBDA_RIE=$(CURDIR)/.tools/bin/aws-lambda-rie"

emulators-stop:
	-bash infra/emulators/dynamodb-local.sh stop
	-bash infra/emulators/versitygw.sh stop

bench: ## rerunnable benchmarks: patch create/apply, the check handler stack (OTA_BENCH_PUBLISH=1 adds the 150 MB publish run; BENCH_PAIRS=1 our patch vs zstd on real npm builds, downloads ~25 MB once)
	$(GO) test -run '^$$' -bench . -benchmem ./shared/delta/
	$(GO) test -run '^$$' -bench CapgoCheck -benchmem ./shared/api/
	@if [ -n "$$OTA_BENCH_PUBLISH" ]; then $(GO) test -run TestBenchPublishBig -v -timeout 60m ./cmd/ota; fi
	@if [ -n "$$BENCH_PAIRS" ]; then bash infra/bench/patch-vs-zstd.sh; fi

soak: ## bounded soak of otad on loopback: mixed load, a kill -9 and restart, exact counts, leaks (SOAK_FLAGS="-duration 10m -concurrency 64")
	bash infra/soak/soak.sh $(SOAK_FLAGS)

clean:
	rm -rf .build bin
