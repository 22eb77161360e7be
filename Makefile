# The test command of the README. Needs Go 1.26 with cgo (for -race) and, for the client
# compatibility test and axe-core (the accessibility checks of the browser tests), Node.js with npm.
export GOTOOLCHAIN := local
export CGO_ENABLED := 1

.PHONY: test build run fuzz

test:
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix cmd/twofold/testdata/compat --no-audit --no-fund --loglevel=error && \
		npm ci --prefix internal/browsertest/axe --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the Authy client compatibility test and the accessibility checks will be skipped"; fi
	go vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	go test -race -count=1 -timeout 60m ./...

build:
	CGO_ENABLED=0 go build -o twofold ./cmd/twofold

run:
	go run ./cmd/twofold serve

# The hostile-input suite alone (it also runs in make test): every route of a real server driven
# with NUL bytes, invalid UTF-8, huge values, wrong types, deep brackets and 100k parameters, on
# SQLite and on PostgreSQL (TWOFOLD_TEST_POSTGRES, default the local test database).
.PHONY: hostile
hostile:
	TWOFOLD_TEST_POSTGRES=$${TWOFOLD_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable} TWOFOLD_REQUIRE_POSTGRES=1 \
		go test -race -count=1 -run 'TestHostileInput' -v ./cmd/twofold/

# Longer fuzzing of the parsers than the test run's seed corpus.
fuzz:
	go test -run='^$$' -fuzz=FuzzParseParams -fuzztime=60s ./internal/authyapi/
	go test -run='^$$' -fuzz=FuzzAPI -fuzztime=60s ./internal/authyapi/
	go test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=60s ./internal/phone/
	go test -run='^$$' -fuzz=FuzzParseAnyDigits -fuzztime=60s ./internal/phone/
	go test -run='^$$' -fuzz=FuzzParseURI -fuzztime=60s ./internal/otp/
	go test -run='^$$' -fuzz=FuzzParseLink -fuzztime=60s ./cmd/twofold/
	go test -run='^$$' -fuzz='^FuzzSplitCSV$$' -fuzztime=60s ./internal/userimport/records/
	go test -run='^$$' -fuzz=FuzzFinish -fuzztime=60s ./internal/passkeys/
	go test -run='^$$' -fuzz=FuzzNormalize -fuzztime=60s ./internal/recovery/
	go test -run='^$$' -fuzz=FuzzReadParams -fuzztime=60s ./internal/verifyapi/
	go test -run='^$$' -fuzz=FuzzVerifyJWT -fuzztime=60s ./internal/verifyfactors/
	go test -run='^$$' -fuzz='^FuzzUserFile$$' -fuzztime=60s ./internal/userimport/records/
	go test -run='^$$' -fuzz=FuzzVerifyCallback -fuzztime=60s ./client/
	go test -run='^$$' -fuzz=FuzzParseEnvelope -fuzztime=60s ./internal/vault/
	go test -run='^$$' -fuzz=FuzzRedact -fuzztime=60s ./internal/deliver/
	go test -run='^$$' -fuzz=FuzzValidate -fuzztime=60s ./internal/push/
	go test -run='^$$' -fuzz=FuzzRender -fuzztime=60s ./internal/message/
	go test -run='^$$' -fuzz=FuzzDefaultJSON -fuzztime=60s ./internal/deliver/gateway/
	go test -run='^$$' -fuzz=FuzzDefaultForm -fuzztime=60s ./internal/deliver/gateway/
	go test -run='^$$' -fuzz=FuzzStatusHandler -fuzztime=60s ./internal/deliver/twilio/
	go test -run='^$$' -fuzz=FuzzClip -fuzztime=60s ./internal/wiretext/
	go test -run='^$$' -fuzz=FuzzCheck -fuzztime=60s ./internal/password/
	go test -run='^$$' -fuzz=FuzzForbidden -fuzztime=60s ./internal/egress/
	go test -run='^$$' -fuzz=FuzzParseAllowlist -fuzztime=60s ./internal/egress/

# A first look at the samples: Twofold on 127.0.0.1:8080 with its data in ./demo-data, the login
# sample (examples/login) on 127.0.0.1:3000 and the OIDC sample (examples/oidc-login, the second
# factor by Twofold's hosted step) on 127.0.0.1:3001; Ctrl-C stops them all.
.PHONY: demo
demo: build
	./examples/login/demo.sh ./twofold

# Load benchmark of the real server (see BENCHMARKS.md): on SQLite with 1,000 and 1,000,000
# users seeded, and on PostgreSQL too when TWOFOLD_BENCH_POSTGRES names a database; then the
# microbenchmarks of the hot paths with allocation counts. BENCH_FLAGS passes flags to the
# harness (go run ./bench --help), e.g.
# make bench BENCH_FLAGS='-runs 3 -users 1000 -scenarios floor,verify-totp'.
.PHONY: bench
bench:
	CGO_ENABLED=0 go run ./bench $(BENCH_FLAGS)
	go test -run='^$$' -bench=. -benchmem ./internal/otp/ ./internal/authyapi/ ./client/ ./internal/verify/ ./internal/store/ ./internal/accesslog/
