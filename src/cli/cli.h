// The command line: one table of commands (commands.cc) that also produces
// `help`; each handler turns its arguments into one library call and its
// result into output and a named exit code. No deploy logic lives here.
#pragma once

#include <functional>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/error.h"

namespace CLI {
class App;
}

namespace md::cli {

// Exit codes, documented in docs/cli.md. Scripts may rely on them.
enum class Exit : int {
  kOk = 0,            // the command did what was asked
  kFailed = 1,        // the operation failed (deploy failed, peer down, ...)
  kUsage = 2,         // bad arguments or invalid configuration; nothing was changed
  kConflict = 3,      // someone else holds the environment lock / resource
  kRolledBack = 4,    // the deploy failed and was rolled back to the previous release
  kNotFound = 5,      // a named thing (release, secret, deployment) does not exist
  kPermission = 6,    // refused: key, file mode or RBAC
  kInternal = 70,     // a bug: an unexpected exception reached cli::run (sysexits EX_SOFTWARE)
  kInterrupted = 130  // stopped by SIGINT/SIGTERM
};

// The exit code for an error from the library.
Exit exit_for(const Error& e);

// Where a command reads and writes. main() binds these to the process's
// standard streams; tests bind string streams.
struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// A command's body, run after its options are parsed. Returns the exit code.
using Action = std::function<Exit()>;
// Declares the command's options on `cmd` and returns its body. The options
// are usually bound to a struct the body captures by shared_ptr.
using Setup = Action (*)(CLI::App& cmd, Io& io);

struct CommandSpec {
  std::string_view path;     // words after `meshdeploy`, e.g. "secrets set"
  std::string_view summary;  // one line for `meshdeploy help`
  Setup setup;
};

// Every command, in the order `help` lists them.
std::span<const CommandSpec> command_table();

// Parses argv, runs the command, returns the process exit code. Never
// throws: any exception that escapes a command is printed as
// "meshdeploy: internal error: ..." and exits kInternal (guarded()).
int run(int argc, const char* const* argv, Io& io);
// Runs `body`; an exception it throws becomes a message on io.err and
// Exit::kInternal. Never throws.
Exit guarded(Io& io, const std::function<Exit()>& body);

// Prints an error as "meshdeploy: <what>" and returns its exit code.
Exit report(Io& io, const Error& e);

// ---- shared by the command groups (config_cmd.cc) --------------------------

// Adds `-c,--config FILE` (default: ./meshdeploy.yml) bound to `path`.
void add_config_option(CLI::App& cmd, std::string& path);
// Adds `-e,--env ENV` bound to `env`; required unless `required` is false.
void add_env_option(CLI::App& cmd, std::string& env, bool required = true);
// Locates and loads meshdeploy.yml (`path` "" = ./meshdeploy.yml). On any
// problem prints every diagnostic to io.err, one per line, and returns
// kInvalidArgument ("<file>: N problems") so the command exits 2.
Result<config::Config> load_config(Io& io, const std::string& path);
// load_config + resolve(env). kNotFound for an unknown environment.
Result<config::Environment> load_environment(Io& io, const std::string& path,
                                             const std::string& env);

}  // namespace md::cli
