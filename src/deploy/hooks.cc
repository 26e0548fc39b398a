// HookRunner over core/process.h: /bin/sh -c in meshdeploy.yml's folder.
#include <fmt/format.h>

#include "core/log.h"
#include "core/process.h"
#include "deploy/adapters.h"

namespace md::deploy {
namespace {

constexpr size_t kKeep = 64 << 10;  // output kept for the journal/messages (the tail)

class ShellHooks : public HookRunner {
 public:
  ShellHooks(std::filesystem::path cwd, std::function<void(std::string_view)> on_line)
      : cwd_(std::move(cwd)), on_line_(std::move(on_line)) {}

  Result<HookResult> run(const std::string& command, const std::map<std::string, std::string>& vars,
                         Millis timeout) override {
    std::string tail;
    proc::RunOptions o;
    o.cwd = cwd_;
    o.env.set = vars;
    o.timeout = timeout;
    o.line_mode = true;
    o.capture = false;
    o.on_output = [&](proc::Stream, std::string_view line) {
      const std::string clean = log::redact(line);
      if (on_line_) on_line_(clean);
      tail += clean;
      tail += '\n';
      if (tail.size() > 2 * kKeep) tail.erase(0, tail.size() - kKeep);
    };
    auto r = proc::run(proc::Command::shell(command), o);
    if (!r) return tl::unexpected(std::move(r.error()).with_context("hook"));
    HookResult h;
    h.exit_code = r->timed_out ? -1 : r->status.code;
    h.timed_out = r->timed_out;
    h.describe = r->describe();
    h.output = tail.size() > kKeep ? tail.substr(tail.size() - kKeep) : tail;
    return h;
  }

 private:
  std::filesystem::path cwd_;
  std::function<void(std::string_view)> on_line_;
};

}  // namespace

std::unique_ptr<HookRunner> make_shell_hooks(std::filesystem::path cwd,
                                             std::function<void(std::string_view)> on_line) {
  return std::make_unique<ShellHooks>(std::move(cwd), std::move(on_line));
}

}  // namespace md::deploy
