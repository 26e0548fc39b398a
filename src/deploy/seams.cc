#include "deploy/seams.h"

namespace md::deploy {

int ReleaseView::web_running() const {
  int n = 0;
  for (const ProcessView& p : processes)
    if (p.web && p.state != "stopped" && p.state != "failed") ++n;
  return n;
}

int ReleaseView::web_healthy() const {
  int n = 0;
  for (const ProcessView& p : processes)
    if (p.web && p.healthy) ++n;
  return n;
}

int ReleaseView::workers_running() const {
  int n = 0;
  for (const ProcessView& p : processes)
    if (!p.web && p.state == "running") ++n;
  return n;
}

bool ReleaseView::any_failed() const {
  for (const ProcessView& p : processes)
    if (p.state == "failed") return true;
  return false;
}

const ReleaseView* HostView::find(const std::string& version) const {
  for (const ReleaseView& r : releases)
    if (r.version == version) return &r;
  return nullptr;
}

std::string HostView::live() const {
  std::string best;
  int w = 0;
  for (const auto& [version, weight] : weights)
    if (weight > w) {
      w = weight;
      best = version;
    }
  return best;
}

}  // namespace md::deploy
