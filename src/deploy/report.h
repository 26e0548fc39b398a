// Renderers of a deploy's progress (progress.h): plain lines for CI and
// pipes, a live display for terminals, JSON lines for machines, and GitHub
// Actions annotations. The CLI picks one; none of them decides anything.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>

#include "deploy/deploy.h"
#include "deploy/progress.h"

namespace md::deploy {

enum class OutputMode {
  kPlain,     // one line per step with elapsed time
  kTerminal,  // the same lines, plus a live status line redrawn in place
  kJson,      // one JSON object per event
  kGithub,    // plain lines plus ::notice:: / ::warning:: / ::error:: annotations
};

// The mode for an output stream: kJson if asked, kGithub when
// GITHUB_ACTIONS=true, kTerminal when `is_tty`, else kPlain.
OutputMode pick_mode(bool json, bool github_actions, bool is_tty);

// "  1.23s" style elapsed time, right-aligned to 7 characters.
std::string format_elapsed(Millis m);

// "health probe 120 ms, traffic switch 2 ms": a traffic move reported as
// the proxy's probe of the new targets and the switch itself, apart. Pure.
std::string switch_words(Millis probe, Millis swap);

// The first line of a message of several lines (a refusal's reasons follow
// it), with " (listed above)": the end and summary lines name the failure
// without printing its list again. A one-line message as it is. Pure.
std::string headline(std::string_view message);

// One plain line for an event (a message of several lines continues
// indented below it), or "" when the event prints nothing in plain mode
// (step starts). Pure: used by every text mode and tested exactly.
std::string plain_line(const Progress& p);
// The JSON line for an event (no trailing newline).
std::string json_line(const Progress& p);
// GitHub annotation for an event ("::error title=...::message"), or "".
std::string github_annotation(const Progress& p);

// Writes events to `out` in `mode`. Thread-safe (internal mutex). In
// kTerminal mode a thread redraws the status line every 100 ms until
// destruction.
class Renderer : public Observer {
 public:
  Renderer(std::ostream& out, OutputMode mode);
  ~Renderer() override;
  void on_progress(const Progress& p) override;
  // Output of hooks and other processes, as notes of the current step.
  void line(std::string_view text);

 private:
  void redraw_locked();
  void clear_status_locked();
  std::ostream& out_;
  OutputMode mode_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool status_shown_ = false;
  std::string current_;  // the step running now ("" = none)
  MonoTime step_started_{};
  Millis base_elapsed_{0};
  MonoTime base_at_{};
  std::string deployment_id_;
  std::thread ticker_;
};

// The summary of a finished deployment, one line:
// "deploy v2 to production succeeded in 4.21s (traffic switch 2 ms)".
std::string summary_line(const Outcome& o);

}  // namespace md::deploy
