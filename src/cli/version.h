// The version this binary reports (--version, help, agent status).
#pragma once

#include <string_view>

namespace md::cli {

// "0.1.0 (abc1234)": the project version and, when built from a git
// checkout, its `git describe --always --tags` at configure time
// (version.cc.in); just "0.1.0" outside a checkout.
std::string_view version();

}  // namespace md::cli
