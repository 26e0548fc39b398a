// Release operations: artifacts, unpack, start, wait until ready, stop,
// prune, logs.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <thread>

#include "agent/agent_impl.h"
#include "agent/artifact_gc.h"
#include "agent/disk_need.h"
#include "agent/logs.h"
#include "core/files.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/host.h"
#include "supervisor/log_writer.h"

namespace md::agent {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;
using supervisor::State;

namespace {

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// ".tar.gz" or ".tar.zst" from the first bytes; kInvalidArgument otherwise.
Result<std::string> archive_extension(const stdfs::path& file) {
  // A FIFO or device is refused here, never waited on in open().
  const int fd = MD_TRY(fs::open_regular(file));
  unsigned char m[4] = {0, 0, 0, 0};
  ssize_t n = ::read(fd, m, sizeof m);
  ::close(fd);
  if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b) return std::string(".tar.gz");
  if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
    return std::string(".tar.zst");
  return fail(Errc::kInvalidArgument,
              file.filename().string() + " is neither gzip nor zstd compressed");
}

Status check_artifact_request(const std::string& version, const std::string& sha256) {
  MD_TRY_STATUS(check_version(version));
  if (!is_hex64(sha256))
    return fail(Errc::kInvalidArgument, "sha256 must be 64 lower-case hex characters");
  return ok();
}

bool is_up(const supervisor::ProcessStatus& p) { return p.state == State::kRunning && p.healthy; }

}  // namespace

// ---- artifacts ------------------------------------------------------------------------

Result<ReleaseInfo> Agent::Impl::register_artifact(const RegisterArtifact& r) {
  MD_TRY_STATUS(check_artifact_request(r.version, r.sha256));
  if (!r.path.is_absolute())
    return fail(Errc::kInvalidArgument, "artifact path must be absolute: " + r.path.string());
  std::lock_guard op(op_mu);
  std::string ctx = "register artifact " + r.version;
  if (auto stored = store->get(r.version)) {
    if (stored->sha256 == r.sha256) return release_info(r.version);
    return fail(Error(Errc::kAlreadyExists, "release " + r.version + " exists with another sha256")
                    .with_context(ctx));
  }
  std::optional<SavedArtifact> known;
  {
    std::lock_guard lock(mu);
    if (auto it = state.artifacts.find(r.version); it != state.artifacts.end()) known = it->second;
  }
  if (known && known->sha256 != r.sha256)
    return fail(
        Error(Errc::kAlreadyExists, "artifact " + r.version + " is registered with another sha256")
            .with_context(ctx));
  if (known && stdfs::exists(store->artifacts_dir() / known->file)) return release_info(r.version);
  std::string ext = MD_TRY_CTX(archive_extension(r.path), ctx);
  std::string actual = MD_TRY_CTX(sha256_file_hex(r.path), ctx);
  if (actual != r.sha256)
    return fail(Error(Errc::kCorruption, r.path.filename().string() + " has sha256 " +
                                             actual.substr(0, 12) + "..., expected " +
                                             r.sha256.substr(0, 12) + "...")
                    .with_context(ctx));
  std::string name = r.version + ext;
  stdfs::path tmp = store->artifacts_dir() / (".tmp-" + name);
  std::error_code ec;
  stdfs::copy_file(r.path, tmp, stdfs::copy_options::overwrite_existing, ec);
  if (!ec) stdfs::rename(tmp, store->artifacts_dir() / name, ec);
  if (ec) {
    const int err = ec.value();
    stdfs::remove(tmp, ec);
    if (is_disk_full_errno(err)) {
      std::error_code size_ec;
      const uint64_t size = stdfs::file_size(r.path, size_ec);
      const auto free = disk_free(store->artifacts_dir());
      return fail(
          disk_full(host_name(), size_ec ? 0 : size, free ? free->bytes : 0).with_context(ctx));
    }
    return fail(
        Error(Errc::kIo, "copy into " + store->artifacts_dir().string() + ": " + ec.message())
            .with_context(ctx));
  }
  {
    std::lock_guard lock(mu);
    state.artifacts[r.version] = SavedArtifact{r.version, r.sha256, name};
  }
  MD_TRY_STATUS(persist());
  kLog.info("artifact {} registered ({}...)", r.version, r.sha256.substr(0, 12));
  return release_info(r.version);
}

Status Agent::Impl::upload_chunk(const std::string& version, uint64_t offset,
                                 std::string_view data) {
  MD_TRY_STATUS(check_version(version));
  std::lock_guard op(op_mu);
  stdfs::path part = store->artifacts_dir() / (std::string(kUploadPrefix) + version);
  std::error_code ec;
  uint64_t have = stdfs::exists(part, ec) ? stdfs::file_size(part, ec) : 0;
  if (offset != 0 && offset != have)
    return fail(Errc::kFailedPrecondition, "upload of " + version + " has " + std::to_string(have) +
                                               " bytes; continue at that offset");
  int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (offset == 0 ? O_TRUNC : O_APPEND),
                  0600);
  if (fd < 0) return fail(Errc::kIo, "open " + part.string() + ": " + std::strerror(errno));
  const uint64_t end = (offset == 0 ? 0 : have) + data.size();
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      if (n < 0 && is_disk_full_errno(err)) {
        // WHY remove it all: a half upload the disk cannot finish only keeps
        // the disk full; the controller starts again at offset 0.
        stdfs::remove(part, ec);
        const auto free = disk_free(store->artifacts_dir());
        return fail(Error(disk_full(host_name(), end, free ? free->bytes : 0))
                        .with_context("upload " + version));
      }
      return fail(Errc::kIo, "write " + part.string() + ": " + std::strerror(err));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  ::close(fd);
  return ok();
}

Result<ReleaseInfo> Agent::Impl::commit_upload(const std::string& version,
                                               const std::string& sha256) {
  MD_TRY_STATUS(check_artifact_request(version, sha256));
  stdfs::path part = store->artifacts_dir() / (std::string(kUploadPrefix) + version);
  if (!stdfs::exists(part))
    return fail(Errc::kNotFound, "no upload of " + version + " in progress");
  auto info = register_artifact(RegisterArtifact{version, sha256, part});
  std::error_code ec;
  stdfs::remove(part, ec);
  if (info) kLog.info("artifact {} came by upload", version);
  return info;
}

Result<ReleaseInfo> Agent::Impl::unpack(const Unpack& r) {
  MD_TRY_STATUS(check_version(r.version));
  std::lock_guard op(op_mu);
  if (auto stored = store->get(r.version)) return release_info(r.version);
  SavedArtifact art;
  {
    std::lock_guard lock(mu);
    auto it = state.artifacts.find(r.version);
    if (it == state.artifacts.end())
      return fail(Errc::kNotFound, "unpack " + r.version + ": no artifact registered for it");
    art = it->second;
  }
  stdfs::path file = store->artifacts_dir() / art.file;
  auto unpacked =
      store->unpack(r.version, file, art.sha256, SharedPaths{r.shared_dirs, r.shared_files});
  if (!unpacked) {
    // A refused artifact (hostile entry, bad checksum, unreadable) never
    // becomes usable, and one the disk could not hold only keeps it full: both
    // go at once. The next deploy ships it again. Kept: one that waits for a
    // shared file or a version conflict to be settled.
    const Errc code = unpacked.error().code();
    if (code == Errc::kInvalidArgument || code == Errc::kCorruption || code == Errc::kIo) {
      {
        std::lock_guard lock(mu);
        state.artifacts.erase(r.version);
      }
      std::error_code ec;
      stdfs::remove(file, ec);
      (void)persist();
      kLog.warn("artifact {} removed: {}", r.version, unpacked.error().what());
    }
    return tl::unexpected(unpacked.error());
  }
  const StoredRelease& stored = *unpacked;
  {
    std::lock_guard lock(mu);
    state.artifacts.erase(r.version);
  }
  std::error_code ec;
  stdfs::remove(file, ec);  // the unpacked release is the durable form now
  MD_TRY_STATUS(persist());
  kLog.info("release {} unpacked into {}", r.version, stored.dir.string());
  return release_info(r.version);
}

// ---- processes ---------------------------------------------------------------------------

Result<ReleaseInfo> Agent::Impl::start_release(const Start& r) {
  MD_TRY_STATUS(check_version(r.version));
  std::string ctx = "start " + r.version;
  if (r.services.empty())
    return fail(Error(Errc::kInvalidArgument, "no services").with_context(ctx));
  for (const auto& s : r.services) {
    if (s.command.empty())
      return fail(
          Error(Errc::kInvalidArgument, "service " + s.name + " has no command").with_context(ctx));
    if (s.kind == config::ServiceKind::kWeb) {
      SavedRelease probe;
      MD_TRY_STATUS(proxy::validate(proxy_spec(probe, s)).map_error([&](Error e) {
        return std::move(e).with_context(ctx + ": service " + s.name);
      }));
    }
  }
  for (const auto& [name, value] : r.secrets)
    MD_TRY_STATUS(secrets::check_secret_value(name, value.reveal()).map_error([&](Error e) {
      return std::move(e).with_context(ctx);
    }));
  std::lock_guard op(op_mu);
  if (auto stored = store->get(r.version); !stored)
    return fail(
        Error(Errc::kFailedPrecondition, "release " + r.version + " is not unpacked on this host")
            .with_context(ctx));
  // A repeated start is a no-op for processes that run; one that asks for
  // another command than the running one would silently keep the old one
  // while the state file claimed the new: refuse it.
  {
    std::lock_guard lock(mu);
    if (auto it = state.releases.find(r.version); it != state.releases.end()) {
      std::set<std::string> running;
      for (const auto& p : sup->status())
        if (p.release == r.version && p.state != State::kStopped && p.state != State::kFailed)
          running.insert(p.service);
      for (const auto& s : r.services) {
        const config::Service* old = find_service(it->second, s.name);
        if (!old || !running.count(s.name) || !in_role(r.role, s) || old->command == s.command)
          continue;
        return fail(Error(Errc::kConflict, "service " + s.name + " of " + r.version +
                                               " runs with another command ('" + old->command +
                                               "', asked: '" + s.command +
                                               "'); stop it first or start a new version")
                        .with_context(ctx));
      }
    }
  }
  MD_TRY_STATUS(fs::ensure_dir(logs_dir / r.version, 0700).map_error([&](Error e) {
    return std::move(e).with_context(ctx);
  }));
  MD_TRY_STATUS(
      supervisor::write_secrets_file(secrets_path(r.version), r.secrets).map_error([&](Error e) {
        return std::move(e).with_context(ctx);
      }));
  SavedRelease rel;
  {
    std::lock_guard lock(mu);
    SavedRelease& saved = state.releases[r.version];
    saved.version = r.version;
    if (auto stored = store->get(r.version)) saved.sha256 = stored->sha256;
    saved.environment = r.environment;
    saved.deployment_id = r.deployment_id;
    saved.services = r.services;
    saved.env = r.env;
    saved.secret_names.clear();
    for (const auto& [name, v] : r.secrets) saved.secret_names.push_back(name);
    saved.sticky_cookie = r.sticky_cookie;
    saved.sticky_header = r.sticky_header;
    saved.drain_deadline_ms = r.drain_deadline.count();
    for (const auto& s : r.services)
      if (in_role(r.role, s)) saved.running.insert(s.name);
    rel = saved;
  }
  // WHY persist before spawning: a crash in between leaves the intent on
  // disk; the orphan scan catches a process spawned but not yet recorded.
  MD_TRY_STATUS(persist());
  int started = 0;
  for (const auto& s : r.services) {
    if (!in_role(r.role, s)) continue;
    for (int i = 1; i <= s.count; ++i) {
      MD_TRY_STATUS(sup->start(process_spec(rel, s, i, r.secrets)).map_error([&](Error e) {
        return std::move(e).with_context(ctx);
      }));
      ++started;
    }
  }
  MD_TRY_STATUS(persist());
  kLog.info("release {}: {} {} process(es) running or starting", r.version, started,
            role_name(r.role));
  return release_info(r.version);
}

Result<ReleaseInfo> Agent::Impl::wait_ready(const WaitReady& r) {
  MD_TRY_STATUS(check_version(r.version));
  MonoTime deadline = clock.mono() + r.timeout;
  SavedRelease rel;
  {
    std::lock_guard lock(mu);
    auto it = state.releases.find(r.version);
    if (it == state.releases.end())
      return fail(Errc::kFailedPrecondition, "release " + r.version + " was never started here");
    rel = it->second;
  }
  for (;;) {
    std::vector<std::string> waiting;
    int count = 0;
    for (const auto& p : sup->status()) {
      if (p.release != r.version) continue;
      const config::Service* svc = find_service(rel, p.service);
      if (!svc || !in_role(r.role, *svc)) continue;
      ++count;
      std::string name = p.service + "." + std::to_string(p.index);
      if (p.state == State::kFailed)
        return fail(Errc::kFailedPrecondition, r.version + "/" + name + " failed: " + p.error +
                                                   " (see `meshdeploy logs --release " + r.version +
                                                   "`)");
      if (!is_up(p))
        waiting.push_back(name + " " + std::string(supervisor::state_name(p.state)) +
                          (p.last_exit.empty() ? "" : " (last: " + p.last_exit + ")"));
    }
    if (count == 0)
      return fail(Errc::kFailedPrecondition, "release " + r.version + " has no " +
                                                 std::string(role_name(r.role)) +
                                                 " process started");
    if (waiting.empty()) return release_info(r.version);
    if (clock.mono() >= deadline) {
      std::string list;
      for (const auto& w : waiting) list += (list.empty() ? "" : ", ") + w;
      return fail(Errc::kTimeout,
                  "release " + r.version + " not ready within " +
                      std::to_string(r.timeout.count()) + "ms: " + list,
                  true);
    }
    clock.sleep_for(10ms);
  }
}

Result<ReleaseInfo> Agent::Impl::stop_release(const Stop& r) {
  MD_TRY_STATUS(check_version(r.version));
  std::vector<std::string> ids;
  bool web = r.role != Role::kWorkers;
  auto refuse_if_routed = [&]() -> Status {
    if (web && !r.force && takes_traffic(r.version))
      return fail(Errc::kFailedPrecondition,
                  "release " + r.version + " takes traffic; route it away first (or force)");
    return ok();
  };
  MD_TRY_STATUS(refuse_if_routed());
  if (web && !r.force) {
    // Without the operation lock: draining may take its whole deadline.
    Millis deadline{30000};
    {
      std::lock_guard lock(mu);
      if (auto it = state.releases.find(r.version); it != state.releases.end())
        deadline = Millis(it->second.drain_deadline_ms);
    }
    if (auto st = drain(Drain{r.version, deadline}); !st)
      kLog.warn("stop {}: {}; stopping anyway", r.version, st.error().what());
  }
  {
    std::lock_guard op(op_mu);
    MD_TRY_STATUS(refuse_if_routed());
    SavedRelease rel;
    bool known = false;
    {
      std::lock_guard lock(mu);
      auto it = state.releases.find(r.version);
      if (it != state.releases.end()) {
        rel = it->second;
        known = true;
      }
    }
    if (!known) return ReleaseInfo{r.version, "", 0, false, "", 0, {}, ""};  // never ran here
    {
      std::lock_guard lock(mu);
      auto& saved = state.releases[r.version];
      for (const auto& s : rel.services)
        if (in_role(r.role, s)) saved.running.erase(s.name);
      if (r.role == Role::kAll) saved.warm_until_ms = 0;  // stopped now: nothing left to retire
    }
    for (const auto& p : sup->status()) {
      if (p.release != r.version) continue;
      const config::Service* svc = find_service(rel, p.service);
      if (svc && !in_role(r.role, *svc)) continue;
      ids.push_back(p.id);
      (void)sup->stop(p.id, r.grace > Millis(0) ? std::optional<Millis>(r.grace) : std::nullopt);
    }
    MD_TRY_STATUS(persist());
    kLog.info("release {}: stopping {} {} process(es)", r.version, ids.size(), role_name(r.role));
  }
  if (!r.wait) return release_info(r.version);
  // Without the operation lock: a stop may take its whole grace period, and
  // a rollback must not wait behind it.
  for (;;) {
    bool running = false;
    for (const auto& id : ids) {
      auto s = sup->status(id);
      if (s && (s->ref.pid > 0 || s->state == State::kStopping)) running = true;
    }
    if (!running) break;
    // WHY: the supervisor's ticks end when the agent quits; its successor
    // re-adopts whatever is still stopping.
    if (quitting) return release_info(r.version);
    clock.sleep_for(10ms);
  }
  std::lock_guard op(op_mu);
  for (const auto& id : ids) (void)sup->forget(id);
  bool any_left = false;
  for (const auto& p : sup->status()) any_left = any_left || p.release == r.version;
  if (!any_left) {
    std::error_code ec;
    stdfs::remove(secrets_path(r.version), ec);
  }
  MD_TRY_STATUS(persist());
  return release_info(r.version);
}

Result<ReleaseInfo> Agent::Impl::keep_warm(const KeepWarm& r) {
  MD_TRY_STATUS(check_version(r.version));
  const std::string ctx = "keep " + r.version + " warm";
  std::lock_guard op(op_mu);
  if (takes_traffic(r.version))
    return fail(Error(Errc::kFailedPrecondition, "it takes traffic; route it away first")
                    .with_context(ctx));
  const SysTime until = clock.now() + r.window;
  {
    std::lock_guard lock(mu);
    auto it = state.releases.find(r.version);
    if (it == state.releases.end())
      return fail(Error(Errc::kFailedPrecondition, "it never ran on this host").with_context(ctx));
    it->second.warm_until_ms = to_unix_ms(until);
  }
  MD_TRY_STATUS(persist());
  retire_wake.notify();
  kLog.info("release {}: kept warm until {}, then stopped", r.version, format_time(until));
  return release_info(r.version);
}

std::optional<MonoTime> Agent::Impl::next_warm_deadline() const {
  std::optional<int64_t> first;
  {
    std::lock_guard lock(mu);
    for (const auto& [v, rel] : state.releases)
      if (rel.warm_until_ms > 0 && (!first || rel.warm_until_ms < *first))
        first = rel.warm_until_ms;
  }
  if (!first) return std::nullopt;
  return clock.mono() + Millis(*first - to_unix_ms(clock.now()));
}

void Agent::Impl::retire_expired() {
  const int64_t now = to_unix_ms(clock.now());
  std::vector<std::string> due;
  {
    std::lock_guard lock(mu);
    for (const auto& [v, rel] : state.releases)
      if (rel.warm_until_ms > 0 && rel.warm_until_ms <= now) due.push_back(v);
  }
  for (const std::string& v : due) {
    if (takes_traffic(v)) {
      // Routed to again (a rollback) after the deadline was set.
      {
        std::lock_guard lock(mu);
        if (auto it = state.releases.find(v); it != state.releases.end())
          it->second.warm_until_ms = 0;
      }
      (void)persist();
      continue;
    }
    kLog.info("release {}: rollback window over; stopping it", v);
    auto st = stop_release(Stop{v, Role::kAll, Millis(0), false, true});
    if (!st) {
      kLog.error("release {}: cannot stop it at the end of its rollback window: {}", v,
                 st.error().what());
      std::lock_guard lock(mu);
      // WHY clear: retrying every tick would flood the log; the failure is
      // logged and `meshdeploy status` shows what runs.
      if (auto it = state.releases.find(v); it != state.releases.end())
        it->second.warm_until_ms = 0;
    }
  }
}

Status Agent::Impl::stop_everything() {
  std::set<std::string> versions;
  for (const auto& p : sup->status()) versions.insert(p.release);
  for (const auto& v : versions) {
    auto r = stop_release(Stop{v, Role::kAll, Millis(0), true, true});
    if (!r) kLog.error("stop {}: {}", v, r.error().what());
  }
  return ok();
}

Result<std::vector<std::string>> Agent::Impl::prune(const Prune& r) {
  std::lock_guard op(op_mu);
  std::set<std::string> protect(r.protect.begin(), r.protect.end());
  for (const auto& [s, route] : current_routes()) {
    if (!route.live.empty()) protect.insert(route.live);
    if (!route.canary.empty()) protect.insert(route.canary);
  }
  for (const auto& p : sup->status()) protect.insert(p.release);  // warm or running
  auto removed = MD_TRY(store->prune(r.keep, protect));
  std::set<std::string> registered;
  {
    std::lock_guard lock(mu);
    for (const auto& [v, a] : state.artifacts) registered.insert(a.file);
  }
  // Orphans: artifacts no registration names (refused, or left by a crash).
  for (const std::string& f : remove_orphan_artifacts(store->artifacts_dir(), registered))
    kLog.info("removed orphan artifact {}", f);
  {
    std::lock_guard lock(mu);
    for (const auto& v : removed) {
      state.releases.erase(v);
      std::error_code ec;
      stdfs::remove_all(logs_dir / v, ec);
      stdfs::remove(secrets_path(v), ec);
    }
  }
  MD_TRY_STATUS(persist());
  if (!removed.empty()) kLog.info("pruned {} release(s)", removed.size());
  return removed;
}

void Agent::Impl::expire_uploads() {
  // WHY try: an unpack may hold the lock for minutes; the next round retries.
  std::unique_lock op(op_mu, std::try_to_lock);
  if (!op.owns_lock()) return;
  for (const std::string& f :
       remove_stale_uploads(store->artifacts_dir(), opts.upload_expiry, clock.now()))
    kLog.warn("removed upload {}: no bytes for {} ms", f, opts.upload_expiry.count());
}

Result<LogsResult> Agent::Impl::logs(const Logs& r) {
  MD_TRY_STATUS(check_version(r.version));
  return read_logs(logs_dir / r.version, r);
}

}  // namespace md::agent
