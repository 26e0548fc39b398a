// Redaction throughput: 1 MiB chunks of log-like text, 1,000 secrets of
// 16-64 bytes with all their derived forms (base64 x3 offsets x2 alphabets,
// URL- and JSON-escaped), against a naive find-and-replace over the same
// input in the same program. Figures: bench/README.md.
//
//   build/release/bench/secrets_redact_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true    (one command line)
#include <benchmark/benchmark.h>

#include <random>
#include <string>

#include "secrets/secrets.h"

namespace {

using md::secrets::Redactor;
using md::secrets::Secret;
using md::secrets::SecretMap;

constexpr size_t kChunk = 1 << 20;

struct Fixture {
  std::shared_ptr<const Redactor> redactor;
  std::string text;  // kChunk bytes
  size_t secrets = 0;

  // `short_secrets` more secrets of 4-15 bytes (PINs, short passwords) put
  // patterns into the slower short tiers.
  explicit Fixture(int short_secrets = 0) {
    std::mt19937_64 rng(2026);
    const std::string alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const std::string punct = alnum + "!#$%&()*+,-./:;<=>?@[]^_{|}~ ";
    SecretMap m;
    for (int i = 0; i < 1000; ++i) {
      // Most real secrets are tokens (alphanumeric); a third are passwords
      // or URLs with characters that URL and JSON encoders escape.
      const std::string& cs = i % 3 == 0 ? punct : alnum;
      std::string v(16 + rng() % 49, '\0');
      for (char& c : v) c = cs[rng() % cs.size()];
      m.emplace("SECRET_" + std::to_string(i), Secret(v));
    }
    for (int i = 0; i < short_secrets; ++i) {
      std::string v(4 + rng() % 12, '\0');
      for (char& c : v) c = alnum[rng() % alnum.size()];
      m.emplace("SHORT_" + std::to_string(i), Secret(v));
    }
    secrets = m.size();
    redactor = *Redactor::create(m);
    const auto& pats = redactor->patterns();
    // Log lines; about one in 50 carries a secret in one of its forms.
    const char* words[] = {"GET",  "POST",  "/api/v1/flows", "status=200", "latency_ms=12",
                           "user", "trace", "worker",        "job",        "retry",
                           "ok",   "info",  "debug",         "webhook",    "payload"};
    uint64_t n = 0;
    while (text.size() < kChunk) {
      text += "2026-11-22T09:00:00." + std::to_string(100 + n % 900) + "Z ";
      for (int w = 0; w < 8; ++w) {
        text += words[rng() % std::size(words)];
        text += ' ';
      }
      text += "id=" + std::to_string(rng());
      if (++n % 50 == 0) text += " token=" + pats[rng() % pats.size()];
      text += '\n';
    }
    text.resize(kChunk);
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}
const Fixture& fixture_with_short() {
  static const Fixture f(100);
  return f;
}

void run_redact(benchmark::State& state, const Fixture& f) {
  for (auto _ : state) benchmark::DoNotOptimize(f.redactor->redact(f.text));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.text.size()));
  state.counters["patterns"] = static_cast<double>(f.redactor->patterns().size());
  state.counters["secrets"] = static_cast<double>(f.secrets);
}

void BM_Redact(benchmark::State& state) { run_redact(state, fixture()); }
BENCHMARK(BM_Redact)->Unit(benchmark::kMillisecond);

// The same with 100 extra secrets of 4-15 bytes: the short tiers have small
// strides, so this is the slow case.
void BM_RedactWithShortSecrets(benchmark::State& state) { run_redact(state, fixture_with_short()); }
BENCHMARK(BM_RedactWithShortSecrets)->Unit(benchmark::kMillisecond);

// The streaming form, as the supervisor uses it on process output.
void BM_RedactStream(benchmark::State& state) {
  const Fixture& f = fixture();
  Redactor::Stream s(f.redactor);
  for (auto _ : state) benchmark::DoNotOptimize(s.write(f.text));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.text.size()));
}
BENCHMARK(BM_RedactStream)->Unit(benchmark::kMillisecond);

// What one writes without thinking: for each pattern, find and replace.
void BM_NaiveFindReplace(benchmark::State& state) {
  const Fixture& f = fixture();
  const auto& pats = f.redactor->patterns();
  for (auto _ : state) {
    std::string t = f.text;
    for (const std::string& p : pats)
      for (size_t at = t.find(p); at != std::string::npos; at = t.find(p, at + 10))
        t.replace(at, p.size(), "[REDACTED]");
    benchmark::DoNotOptimize(t);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.text.size()));
}
BENCHMARK(BM_NaiveFindReplace)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
