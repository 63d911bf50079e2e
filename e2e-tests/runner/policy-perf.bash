# Sourced from the repository's root by bench-count.sh and bench-phases.sh: builds
# policy-perf in the runner profile (the wasmtime build `make runner-tests` uses, and the
# one bench/fresh-instance-budget.txt was counted with) and counts its instructions.
cargo build --locked --quiet --profile runner -p policy-runner --bin policy-perf
perf="$PWD/target/runner/policy-perf"
# A figure is the difference between 1 and 1 + $requests requests, over $requests.
requests=10

# count ARGS...: the instructions of `policy-perf count ARGS...`, by callgrind.
count() {
  local out
  out="$(valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=/dev/null \
    "$perf" count "$@" 2>&1)" || { echo "$out" >&2; return 1; }
  sed -n 's/.*Collected : //p' <<<"$out"
}
