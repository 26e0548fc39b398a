// main(): global flags, the command tree built from the table, dispatch.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/docgen.h"
#include "cli/version.h"
#include "core/log.h"

namespace md::cli {
namespace {

std::vector<std::string> split_words(std::string_view path) {
  std::vector<std::string> words;
  std::istringstream in{std::string(path)};
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

CLI::App* find_sub(CLI::App& parent, const std::string& name) {
  for (CLI::App* s : parent.get_subcommands([](CLI::App*) { return true; }))
    if (s->get_name() == name) return s;
  return nullptr;
}

// The deepest subcommand the user named, or nullptr.
CLI::App* chosen(CLI::App& app) {
  CLI::App* cur = &app;
  for (;;) {
    auto subs = cur->get_subcommands();
    if (subs.empty()) return cur == &app ? nullptr : cur;
    cur = subs.front();
  }
}

void print_overview(Io& io) {
  io.out << "meshdeploy " << version()
         << " — zero-downtime deploys for HTTP services on Postgres\n\n"
         << "Usage: meshdeploy COMMAND [OPTIONS]\n\nCommands:\n";
  for (const CommandSpec& c : command_table()) {
    std::string name(c.path);
    io.out << "  " << name << std::string(name.size() < 22 ? 22 - name.size() : 1, ' ') << c.summary
           << "\n";
  }
  io.out << "\nRun 'meshdeploy help COMMAND' for a command's options.\n"
            "Exit codes: 0 ok, 1 failed, 2 usage/config error, 3 locked, 4 rolled back,\n"
            "5 not found, 6 permission denied, 70 internal error, 130 interrupted (docs/cli.md).\n";
}

}  // namespace

Exit exit_for(const Error& e) {
  switch (e.code()) {
    case Errc::kInvalidArgument:
      return Exit::kUsage;
    case Errc::kConflict:
      return Exit::kConflict;
    case Errc::kNotFound:
      return Exit::kNotFound;
    case Errc::kPermissionDenied:
      return Exit::kPermission;
    case Errc::kCancelled:
      return Exit::kInterrupted;
    default:
      return Exit::kFailed;
  }
}

Exit report(Io& io, const Error& e) {
  io.err << "meshdeploy: " << e.what() << "\n";
  return exit_for(e);
}

Exit guarded(Io& io, const std::function<Exit()>& body) {
  // WHY catch everything here: library exceptions are caught in their
  // adapters (STYLE.md 6); one that slips through is a bug, but it must end
  // as a message and an exit code, never as abort() (exit 134) half-way
  // through a deploy. The message passes the log redactor: it may quote data.
  try {
    return body();
  } catch (const std::exception& e) {
    io.err << "meshdeploy: internal error: " << log::redact(e.what())
           << " (this is a bug; please report it with the command line)\n";
  } catch (...) {
    io.err << "meshdeploy: internal error: an unknown exception"
           << " (this is a bug; please report it with the command line)\n";
  }
  return Exit::kInternal;
}

namespace {
int run_unguarded(int argc, const char* const* argv, Io& io);
}

int run(int argc, const char* const* argv, Io& io) {
  return static_cast<int>(
      guarded(io, [&] { return static_cast<Exit>(run_unguarded(argc, argv, io)); }));
}

namespace {

int run_unguarded(int argc, const char* const* argv, Io& io) {
  CLI::App app{"meshdeploy: zero-downtime deploys for HTTP services on Postgres", "meshdeploy"};
  app.set_help_flag("-h,--help", "show help");
  bool version = false;
  app.add_flag("--version", version, "print the version");
  std::string log_level, log_format;
  app.add_option("--log-level", log_level, "debug, info (default), warn or error")
      ->type_name("LEVEL");
  app.add_option("--log-format", log_format, "text (default) or json log lines on stderr")
      ->type_name("FORMAT");
  app.require_subcommand(0, 1);

  std::map<CLI::App*, Action> actions;
  std::map<std::string, CLI::App*> by_path;
  for (const CommandSpec& c : command_table()) {
    CLI::App* parent = &app;
    std::string path;
    std::vector<std::string> words = split_words(c.path);
    for (size_t i = 0; i < words.size(); ++i) {
      const std::string& w = words[i];
      path += path.empty() ? w : " " + w;
      CLI::App* sub = find_sub(*parent, w);
      if (!sub) {
        sub = parent->add_subcommand(
            w, i + 1 == words.size() ? std::string(c.summary) : "'" + path + "' commands");
        sub->require_subcommand(0, 1);
        sub->fallthrough(false);
      }
      parent = sub;
    }
    actions[parent] = c.setup(*parent, io);
    by_path[std::string(c.path)] = parent;
  }
  CLI::App* help = app.add_subcommand("help", "show help for a command");
  std::vector<std::string> help_words;
  help->add_option("command", help_words, "command words, e.g. 'secrets set'");
  bool man = false;
  std::string completion;
  help->add_flag("--man", man, "print the manual page meshdeploy(1) in roff");
  help->add_option("--completion", completion, "print the completion script for bash or zsh")
      ->type_name("SHELL");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    io.out << app.help();
    return static_cast<int>(Exit::kOk);
  } catch (const CLI::ParseError& e) {
    // --help on a subcommand throws CallForHelp from inside; CLI11 formats it.
    if (e.get_exit_code() == 0) {
      std::ostringstream o, er;
      app.exit(e, o, er);
      io.out << o.str();
      return static_cast<int>(Exit::kOk);
    }
    io.err << "meshdeploy: " << e.what() << "\n";
    CLI::App* c = chosen(app);
    io.err << "run 'meshdeploy help" << (c ? " " + c->get_name() : std::string())
           << "' for usage\n";
    return static_cast<int>(Exit::kUsage);
  }

  if (version) {
    io.out << "meshdeploy " << cli::version() << "\n";
    return static_cast<int>(Exit::kOk);
  }
  if (!log_level.empty()) {
    auto l = log::parse_level(log_level);
    if (!l) return static_cast<int>(report(io, l.error()));
    log::set_level(*l);
  }
  if (!log_format.empty()) {
    auto f = log::parse_format(log_format);
    if (!f) return static_cast<int>(report(io, f.error()));
    log::set_sinks({std::make_shared<log::FdSink>(2, *f)});
  }
  CLI::App* cmd = chosen(app);
  if (cmd == help) {
    if (man) {
      write_man(io.out, app, cli::version());
      return static_cast<int>(Exit::kOk);
    }
    if (!completion.empty()) {
      auto st = write_completion(io.out, completion, app);
      return static_cast<int>(st ? Exit::kOk : report(io, st.error()));
    }
    if (help_words.empty()) {
      print_overview(io);
      return static_cast<int>(Exit::kOk);
    }
    std::string path;
    for (const auto& w : help_words) path += path.empty() ? w : " " + w;
    auto it = by_path.find(path);
    if (it == by_path.end()) {
      // A group name ("secrets") lists its commands.
      bool any = false;
      for (const CommandSpec& c : command_table()) {
        if (c.path.substr(0, path.size() + 1) == path + " ") {
          if (!any) io.out << "Commands of '" << path << "':\n";
          io.out << "  " << c.path << "  " << c.summary << "\n";
          any = true;
        }
      }
      if (any) return static_cast<int>(Exit::kOk);
      io.err << "meshdeploy: no command '" << path << "'; run 'meshdeploy help' for the list\n";
      return static_cast<int>(Exit::kUsage);
    }
    // CLI11 writes "<prefix> <name>": the prefix is the program and the group.
    const size_t space = path.rfind(' ');
    io.out << it->second->help(space == std::string::npos ? "meshdeploy"
                                                          : "meshdeploy " + path.substr(0, space));
    return static_cast<int>(Exit::kOk);
  }
  if (!cmd) {
    print_overview(io);
    return static_cast<int>(Exit::kUsage);
  }
  auto it = actions.find(cmd);
  if (it == actions.end()) {
    io.err << "meshdeploy: '" << cmd->get_name() << "' needs a subcommand; run 'meshdeploy help "
           << cmd->get_name() << "'\n";
    return static_cast<int>(Exit::kUsage);
  }
  return static_cast<int>(it->second());
}

}  // namespace

}  // namespace md::cli
