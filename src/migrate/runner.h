// The executor's file-level steps (internal to migrate/): run one file in a
// transaction with its history rows, or statement by statement with recorded
// progress; lock-timeout retries with backoff and jitter.
#pragma once

#include <optional>
#include <random>
#include <string>

#include "migrate/migrate.h"
#include "pg/pg.h"

namespace md::migrate {

struct RunContext {
  pg::Connection& conn;
  const Request& req;
  Clock& clock;
  std::mt19937_64& rng;
  std::string actor;
};

// Why a file stopped: the error for the caller and, when a statement failed,
// where.
struct FileError {
  Error error;
  std::optional<StatementFailure> failure;
};

template <class T>
using FileResult = tl::expected<T, FileError>;

// One transaction: the file's statements and its history rows; all or nothing.
FileResult<AppliedFile> apply_transactional(RunContext& rc, const PlannedFile& f);
// Outside a transaction, one statement at a time from f.resume_at, recording
// progress after each; adds an invalid-index problem to `rep` if a concurrent
// build failed.
FileResult<AppliedFile> apply_statements(RunContext& rc, const PlannedFile& f, ApplyReport& rep);

// Delay before lock-timeout retry `attempt` (0-based): exponential from 250 ms,
// capped at 10 s, with jitter in [d/2, d].
Millis retry_delay(int attempt, std::mt19937_64& rng);

Result<pg::Connection> connect(const Request& req);

}  // namespace md::migrate
