#include "deploy/report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "core/guard.h"
#include "core/json.h"

namespace md::deploy {
namespace {

std::string kind_name(ProgressKind k) {
  switch (k) {
    case ProgressKind::kBegin:
      return "begin";
    case ProgressKind::kStep:
      return "step";
    case ProgressKind::kStepDone:
      return "step_done";
    case ProgressKind::kNote:
      return "note";
    case ProgressKind::kWarning:
      return "warning";
    case ProgressKind::kEnd:
      return "end";
  }
  return "?";
}

// GitHub annotation messages are one line; '%', CR and LF are escaped.
std::string gh_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '%')
      out += "%25";
    else if (c == '\r')
      out += "%0D";
    else if (c == '\n')
      out += "%0A";
    else
      out += c;
  }
  return out;
}

std::string seconds(Millis m) {
  return fmt::format("{:.2f}s", static_cast<double>(m.count()) / 1000.0);
}

// A message of several lines (a refusal listing its reasons) under a step
// line: the first line stays, each next one goes below, indented.
std::string indent_rest(std::string_view message) {
  std::string out;
  for (char c : message) out += c == '\n' ? std::string("\n              ") : std::string(1, c);
  return out;
}

}  // namespace

std::string switch_words(Millis probe, Millis swap) {
  return fmt::format("health probe {} ms, traffic switch {} ms", probe.count(), swap.count());
}

std::string headline(std::string_view message) {
  const size_t nl = message.find('\n');
  if (nl == std::string_view::npos) return std::string(message);
  std::string first(message.substr(0, nl));
  if (!first.empty() && first.back() == ':') first.pop_back();
  return first + " (listed above)";
}

namespace {}  // namespace

OutputMode pick_mode(bool json, bool github_actions, bool is_tty) {
  if (json) return OutputMode::kJson;
  if (github_actions) return OutputMode::kGithub;
  return is_tty ? OutputMode::kTerminal : OutputMode::kPlain;
}

std::string format_elapsed(Millis m) { return fmt::format("{:>7}", seconds(m)); }

std::string plain_line(const Progress& p) {
  const std::string at = "[" + format_elapsed(p.elapsed) + "]";
  switch (p.kind) {
    case ProgressKind::kBegin:
      return fmt::format("{} {} ({})", at, p.message, p.deployment_id);
    case ProgressKind::kStep:
      return "";
    case ProgressKind::kStepDone:
      return fmt::format("{} {:<17} {:<7} {:>7}{}", at, step_name(p.step), p.outcome,
                         p.outcome == "skipped" ? "" : seconds(p.step_elapsed),
                         p.message.empty() ? "" : "  " + indent_rest(p.message));
    case ProgressKind::kNote:
      return fmt::format("{}   {}", at, indent_rest(p.message));
    case ProgressKind::kWarning:
      return fmt::format("{}   warning: {}: {}", at, step_name(p.step), indent_rest(p.message));
    case ProgressKind::kEnd:
      return fmt::format("{} {}{}", at, p.outcome,
                         p.message.empty() ? "" : ": " + headline(p.message));
  }
  return "";
}

std::string json_line(const Progress& p) {
  nlohmann::json j{{"event", kind_name(p.kind)},
                   {"deployment_id", p.deployment_id},
                   {"elapsed_ms", p.elapsed.count()}};
  if (p.kind == ProgressKind::kStep || p.kind == ProgressKind::kStepDone ||
      p.kind == ProgressKind::kWarning)
    j["step"] = step_name(p.step);
  if (!p.outcome.empty()) j["outcome"] = p.outcome;
  if (p.kind == ProgressKind::kStepDone) j["duration_ms"] = p.step_elapsed.count();
  if (!p.message.empty()) j["message"] = p.message;
  if (p.weight) j["weight"] = *p.weight;
  return to_json_text(j);
}

std::string github_annotation(const Progress& p) {
  if (p.kind == ProgressKind::kWarning)
    return fmt::format("::warning title=meshdeploy {}::{}", step_name(p.step),
                       gh_escape(p.message));
  if (p.kind == ProgressKind::kStepDone && p.outcome == "failed")
    return fmt::format("::error title=meshdeploy {} failed::{}", step_name(p.step),
                       gh_escape(p.message));
  if (p.kind == ProgressKind::kEnd) {
    if (p.outcome == "succeeded")
      return fmt::format("::notice title=meshdeploy::deployment {} succeeded", p.deployment_id);
    return fmt::format("::error title=meshdeploy::deployment {} {}: {}", p.deployment_id, p.outcome,
                       gh_escape(p.message));
  }
  return "";
}

Renderer::Renderer(std::ostream& out, OutputMode mode) : out_(out), mode_(mode) {
  if (mode_ != OutputMode::kTerminal) return;
  ticker_ = std::thread([this] {
    std::unique_lock lk(mu_);
    while (!cv_.wait_for(lk, Millis(100), [this] { return stop_; }))
      guarded(log::Logger("deploy"), "progress ticker", [&] { redraw_locked(); });
  });
}

Renderer::~Renderer() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
    clear_status_locked();
  }
  cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
}

void Renderer::clear_status_locked() {
  if (!status_shown_) return;
  out_ << "\r\033[2K";
  status_shown_ = false;
}

void Renderer::redraw_locked() {
  if (current_.empty()) return;
  const MonoTime now = std::chrono::steady_clock::now();
  const auto total = base_elapsed_ + std::chrono::duration_cast<Millis>(now - base_at_);
  const auto in_step = std::chrono::duration_cast<Millis>(now - step_started_);
  static const char* kSpin[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
  const char* spin = kSpin[(in_step.count() / 100) % 10];
  out_ << "\r\033[2K"
       << "[" << format_elapsed(total) << "] " << spin << " " << current_ << " " << seconds(in_step)
       << std::flush;
  status_shown_ = true;
}

void Renderer::on_progress(const Progress& p) {
  std::lock_guard lk(mu_);
  deployment_id_ = p.deployment_id;
  base_elapsed_ = p.elapsed;
  base_at_ = std::chrono::steady_clock::now();
  if (mode_ == OutputMode::kJson) {
    out_ << json_line(p) << "\n" << std::flush;
    return;
  }
  clear_status_locked();
  if (p.kind == ProgressKind::kStep) {
    current_ = std::string(step_name(p.step));
    step_started_ = base_at_;
  } else if (p.kind == ProgressKind::kStepDone || p.kind == ProgressKind::kEnd) {
    current_.clear();
  }
  if (std::string l = plain_line(p); !l.empty()) out_ << l << "\n";
  if (mode_ == OutputMode::kGithub)
    if (std::string a = github_annotation(p); !a.empty()) out_ << a << "\n";
  if (mode_ == OutputMode::kTerminal) redraw_locked();
  out_ << std::flush;
}

void Renderer::line(std::string_view text) {
  std::lock_guard lk(mu_);
  if (mode_ == OutputMode::kJson) {
    out_ << to_json_text(nlohmann::json{
                {"event", "output"}, {"deployment_id", deployment_id_}, {"text", text}})
         << "\n";
  } else {
    clear_status_locked();
    out_ << "            | " << text << "\n";
    if (mode_ == OutputMode::kTerminal) redraw_locked();
  }
  out_ << std::flush;
}

std::string summary_line(const Outcome& o) {
  const state::Deployment& d = o.deployment;
  if (o.via_abort) {
    std::string s =
        fmt::format("rollback: the running deploy of {} was aborted; {} takes all traffic in {}",
                    d.version, d.previous_version, d.environment);
    if (o.switch_time)
      s += " (" + switch_words(o.probe_time.value_or(Millis(0)), *o.switch_time) + ")";
    return s;
  }
  Millis took{0};
  if (d.finished_at) took = std::chrono::duration_cast<Millis>(*d.finished_at - d.started_at);
  std::string s = fmt::format("{} {} to {} {} in {}", d.kind, d.version, d.environment,
                              state::status_name(d.status), seconds(took));
  if (o.switch_time) {
    s += " (" + switch_words(o.probe_time.value_or(Millis(0)), *o.switch_time);
    if (o.spread_time)
      s += fmt::format(", spread {} ms across {} hosts", o.spread_time->count(), o.hosts.size());
    s += ")";
  }
  if (o.hosts.size() > 1) s += fmt::format(" on hosts {}", fmt::join(o.hosts, ", "));
  if (!d.reason.empty()) s += ": " + headline(d.reason);
  return s;
}

}  // namespace md::deploy
