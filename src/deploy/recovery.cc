#include "deploy/recovery.h"

#include <fmt/format.h>

#include <array>
#include <map>
#include <nlohmann/json.hpp>

#include "core/json.h"

namespace md::deploy {
namespace {

using json = nlohmann::json;

json parse_detail(const std::string& text) {
  json j = json::parse(text.empty() ? "{}" : text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json::object();
}

int weight_of(const json& d) {
  auto it = d.find("weight");
  return it != d.end() && it->is_number_integer() ? it->get<int>() : 0;
}

std::string string_of(const json& d, const char* key) {
  auto it = d.find(key);
  return it != d.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

ResumeDecision decide_resume(const std::vector<state::JournalEntry>& journal, ResumeMode mode,
                             bool has_previous) {
  ResumeDecision d;
  std::array<bool, kStepCount> intent{}, outcome{}, failed{};
  std::optional<Step> open;
  std::optional<Step> fail_start;

  for (const state::JournalEntry& e : journal) {
    std::optional<Step> s = parse_step(e.step);
    if (!s) continue;
    const int i = static_cast<int>(*s);
    const json detail = parse_detail(e.detail);
    if (e.phase == "intent") {
      intent[i] = true;
      open = *s;
      if (on_failure_path(*s) && !fail_start) fail_start = *s;
      if (*s == Step::kShiftTraffic && weight_of(detail) > 0) d.traffic_moved = true;
      continue;
    }
    if (open == *s) open.reset();
    if (detail.value("interrupted", false)) continue;  // a resumer closed a dead intent
    outcome[i] = true;
    failed[i] = e.outcome == "failed";
    if (*s == Step::kShiftTraffic && e.outcome == "ok") d.weight_done = weight_of(detail);
    if (failed[i] && transition(*s).fatal && !fail_start) {
      fail_start = transition(*s).on_fail;
      d.failure = string_of(detail, "error");
      if (d.failure.empty()) d.failure = std::string(step_name(*s)) + " failed";
    }
  }
  d.interrupted = open;

  auto complete = [&](Step s) {
    const int i = static_cast<int>(s);
    return outcome[i] && (s != Step::kShiftTraffic || failed[i] || d.weight_done >= 100);
  };
  auto walk = [&](Step s) {
    while (s != Step::kDone && complete(s)) {
      const Transition& t = transition(s);
      s = failed[static_cast<int>(s)] && t.fatal ? t.on_fail : t.on_ok;
    }
    return s;
  };

  if (fail_start) {
    d.failing = true;
    d.next = walk(*fail_start);
    d.summary = fmt::format("finishing the failure path at {} ({})", step_name(d.next),
                            d.failure.empty() ? "rolling back" : d.failure);
    return d;
  }
  if (mode == ResumeMode::kRollBack) {
    // WHY keep_warm too: once it is done the old release belongs to the
    // agent's rollback window; the deploy is past moving traffic back.
    const int kw = static_cast<int>(Step::kKeepWarm);
    const bool old_stopping =
        intent[static_cast<int>(Step::kStopOld)] || (outcome[kw] && !failed[kw]);
    if (old_stopping || !has_previous) {
      d.next = walk(Step::kPreflight);
      d.summary = fmt::format("finishing at {}: {}", step_name(d.next),
                              old_stopping ? "the old release was already stopping"
                                           : "there is no old release to go back to");
      return d;
    }
    d.failing = true;
    d.failure = "interrupted: the controller died";
    d.next = d.traffic_moved                             ? Step::kRollbackTraffic
             : intent[static_cast<int>(Step::kStartNew)] ? Step::kStopNew
                                                         : Step::kOnFailureHook;
    d.summary = fmt::format("rolling back from {}", step_name(d.next));
    return d;
  }
  d.next = walk(Step::kPreflight);
  d.summary = d.weight_done > 0 && d.next == Step::kShiftTraffic
                  ? fmt::format("continuing the canary after {}%", d.weight_done)
                  : fmt::format("continuing at {}", step_name(d.next));
  return d;
}

std::string_view control_name(ControlCommand c) {
  return c == ControlCommand::kPromote ? "promote" : "abort";
}

std::vector<PendingControl> pending_controls(const std::vector<state::JournalEntry>& journal) {
  std::map<int64_t, PendingControl> open;
  for (const state::JournalEntry& e : journal) {
    if (e.step != "control") continue;
    const json d = parse_detail(e.detail);
    if (e.phase == "intent") {
      const std::string cmd = string_of(d, "command");
      if (cmd != "promote" && cmd != "abort") continue;
      open[e.seq] = PendingControl{
          e.seq, cmd == "promote" ? ControlCommand::kPromote : ControlCommand::kAbort,
          string_of(d, "actor"), string_of(d, "reason")};
    } else if (auto it = d.find("for_seq"); it != d.end() && it->is_number_integer()) {
      open.erase(it->get<int64_t>());
    }
  }
  std::vector<PendingControl> out;
  for (auto& [seq, c] : open) out.push_back(std::move(c));
  return out;
}

std::string control_intent_detail(ControlCommand c, const std::string& actor,
                                  const std::string& reason) {
  return to_json_text(json{{"command", control_name(c)}, {"actor", actor}, {"reason", reason}});
}

std::string control_outcome_detail(int64_t for_seq, const std::string& note) {
  return to_json_text(json{{"for_seq", for_seq}, {"note", note}});
}

bool journal_complete(const std::vector<state::JournalEntry>& journal) {
  std::map<std::string, int> open;
  for (const state::JournalEntry& e : journal) {
    if (e.step == "control") continue;  // answered or not, a request is not a step
    if (e.phase == "intent") {
      if (open[e.step]++ > 0) return false;
    } else if (open[e.step] > 0) {
      --open[e.step];
    }
  }
  for (const auto& [step, n] : open)
    if (n > 0) return false;
  return true;
}

}  // namespace md::deploy
