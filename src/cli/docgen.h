// The man page and the shell completions, generated from the command tree
// that run() builds from the command table (commands.cc): a command or an
// option added there appears in both without anyone editing them.
// `meshdeploy help --man` and `meshdeploy help --completion SHELL` print them;
// `cmake --install` runs those (docs/installation.md).
#pragma once

#include <iosfwd>
#include <string_view>

#include "core/error.h"

namespace CLI {
class App;
}

namespace md::cli {

// Writes meshdeploy(1) in roff (man(7) macros): every command of `root` with
// its summary, options and positionals, then the exit codes. Never fails.
void write_man(std::ostream& out, const CLI::App& root, std::string_view version);

// Writes a completion script for `shell` ("bash" or "zsh") that completes
// command words and each command's options. kInvalidArgument for another shell.
Status write_completion(std::ostream& out, std::string_view shell, const CLI::App& root);

}  // namespace md::cli
