// Test helpers for cli/: run the command line with string streams, and a
// fresh temp dir per test.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace md::cli::testing {

struct Ran {
  int code;
  std::string out, err;
};

// Runs `meshdeploy <args...>` in-process through run(), `input` as stdin.
inline Ran run_cli(const std::vector<std::string>& args, const std::string& input = "") {
  std::vector<const char*> argv = {"meshdeploy"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::istringstream in(input);
  std::ostringstream out, err;
  Io io{in, out, err};
  const int code = run(static_cast<int>(argv.size()), argv.data(), io);
  return {code, out.str(), err.str()};
}

// A new directory under /dev/shm (else /tmp) named md-<tag>-XXXXXX.
inline std::filesystem::path make_temp_dir(const std::string& tag) {
  std::string tmpl = std::string(std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp") +
                     "/md-" + tag + "-XXXXXX";
  return mkdtemp(tmpl.data());
}

}  // namespace md::cli::testing
