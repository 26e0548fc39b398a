// load(): parse, interpolate, validate every environment, and report every
// problem at once. resolve() hands out the environments load() built.
#include <algorithm>
#include <cstdlib>
#include <set>

#include "config/schema.h"
#include "core/fs.h"

namespace md::config {

// A secret name as written in the file, with its place.
struct LocatedSecret {
  std::string name;
  std::string key;
  detail::Mark mark;
};

struct Config::Tree {
  std::map<std::string, Environment> environments;
  std::map<std::string, std::vector<LocatedSecret>> secrets;  // per environment
};

namespace {

using detail::Diags;
using detail::Mark;
using detail::Node;
using detail::Reader;

constexpr size_t kMaxFileBytes = 4 << 20;

// Unknown top-level keys that are environment settings get a pointed hint.
std::string top_level_hint(const std::string& key) {
  for (const KeyInfo& k : schema_keys()) {
    if (k.top_level) continue;
    if (k.path == key || k.path.rfind(key + ".", 0) == 0 || k.path.rfind(key + "[", 0) == 0)
      return "'" + key +
             "' is an environment setting: put it under defaults: (every environment) "
             "or environments.<name>: (one environment)";
  }
  return "";
}

Node empty_map(std::string path, Mark mark) {
  Node n;
  n.type = Node::Type::kMap;
  n.path = std::move(path);
  n.mark = mark;
  n.key_mark = mark;
  return n;
}

// The same diagnostic found in several environments is reported once; when
// it stems from shared settings but not every environment shows it, the
// message says which do.
struct Collected {
  Diagnostic d;
  std::vector<std::string> envs;
  bool interpolation = false;
};

void collect(std::vector<Collected>& all, const Diagnostic& d, const std::string& env,
             bool interpolation = false) {
  for (Collected& c : all) {
    if (c.d.line == d.line && c.d.column == d.column && c.d.key == d.key &&
        c.d.message == d.message && c.d.hint == d.hint) {
      if (!env.empty()) c.envs.push_back(env);
      return;
    }
  }
  all.push_back(
      {d, env.empty() ? std::vector<std::string>{} : std::vector<std::string>{env}, interpolation});
}

// Every secret name written in one merged environment tree, with its place.
std::vector<LocatedSecret> locate_secrets(const Node& env) {
  std::vector<LocatedSecret> out;
  auto scalar = [&](const Node* n) {
    if (n && n->type == Node::Type::kScalar) out.push_back({n->scalar, n->path, n->mark});
  };
  auto list = [&](const Node* n) {
    if (n && n->type == Node::Type::kSeq)
      for (const Node& item : n->seq) scalar(&item);
  };
  list(env.find("secrets"));
  if (const Node* m = env.find("migrations")) scalar(m->find("database_url_secret"));
  if (const Node* n = env.find("notifications"))
    if (const Node* chans = n->find("channels"))
      for (const detail::Entry& c : chans->map) {
        scalar(c.value.find("url_secret"));
        list(c.value.find("signing_secrets"));
        scalar(c.value.find("smtp_password_secret"));
      }
  return out;
}

}  // namespace

std::vector<Diagnostic> check_secret_names(const Config& config, const std::string& env_name,
                                           std::span<const std::string> known) {
  std::vector<Diagnostic> out;
  if (!config.tree) return out;
  auto env = config.tree->environments.find(env_name);
  if (env == config.tree->environments.end()) return out;
  std::vector<std::string> names(known.begin(), known.end());
  auto is_known = [&](const std::string& n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  };
  auto missing = [&](const std::string& name, Diagnostic d) {
    std::string near = detail::closest(name, names);
    d.message = "secret '" + name + "' is not in the " + env_name + " vault";
    d.hint = (near.empty() ? "" : "did you mean '" + near + "'? ") +
             "store it with: meshdeploy secrets set " + name + " --env " + env_name;
    out.push_back(std::move(d));
  };
  static const std::vector<LocatedSecret> kNone;
  auto loc = config.tree->secrets.find(env_name);
  const auto& located = loc == config.tree->secrets.end() ? kNone : loc->second;
  for (const LocatedSecret& s : located)
    if (s.name != "*" && !is_known(s.name))
      missing(s.name, Diagnostic{config.file.string(), s.mark.line, s.mark.col, s.key, "", ""});
  // References that come from a default, not from the file.
  for (const SecretRef& r : secret_references(env->second)) {
    if (r.name == "*" || is_known(r.name)) continue;
    bool written = std::any_of(located.begin(), located.end(),
                               [&](const LocatedSecret& s) { return s.name == r.name; });
    if (!written)
      missing(r.name, Diagnostic{config.file.string(), 0, 0,
                                 "environments." + env_name + "." + r.used_by, "", ""});
  }
  return out;
}

std::string Diagnostic::format() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  s += ": ";
  if (!key.empty()) s += key + ": ";
  s += message;
  if (!hint.empty()) s += " (" + hint + ")";
  return s;
}

std::optional<std::string> getenv_lookup(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

const std::vector<KeyInfo>& schema_keys() {
  static const std::vector<KeyInfo> keys = [] {
    std::vector<KeyInfo> k = {
        {"version", "integer", "1", true},
        {"app", "string", "required", true},
        {"defaults", "map", "{}", true},
        {"environments", "map", "required", true},
        {"environments.<name>", "map", "{}", true},
    };
    Diags d;
    d.keys = &k;
    Reader r(d, nullptr, "", "", {});
    Environment env;
    detail::read_environment(r, env, detail::EnvContext{});
    return k;
  }();
  return keys;
}

LoadResult load_text(std::string_view text, const std::filesystem::path& file,
                     const EnvLookup& lookup) {
  LoadResult res;
  std::string name = file.string();
  if (text.size() > kMaxFileBytes) {
    res.diagnostics.push_back(
        {name, 0, 0, "", "the file is larger than 4 MiB", "is this the right file?"});
    return res;
  }
  detail::Parsed parsed = detail::parse_yaml(text, name);
  if (!parsed.root) {
    res.diagnostics = std::move(parsed.diagnostics);
    return res;
  }
  Node& root = *parsed.root;
  std::vector<Diagnostic> interp;
  detail::interpolate_tree(root, lookup, name, interp);
  // A value whose interpolation failed is reported once, not again as,
  // say, "'' is not a whole number".
  std::set<std::string> broken;
  for (const Diagnostic& d : interp) broken.insert(d.key);

  std::vector<Collected> all;
  for (const Diagnostic& d : interp) collect(all, d, "", true);
  Config cfg;
  cfg.file = file;
  auto tree = std::make_shared<Config::Tree>();

  Diags top{name, {}, nullptr};
  if (root.type != Node::Type::kMap) {
    top.add(root.mark, "",
            root.is_null() ? "the file is empty" : "expected a map at the top of the file",
            "start with app:, defaults: and environments: (see docs/configuration.md)");
  } else {
    Reader r(top, &root, "", "", Mark{1, 1});
    if (!r.str("app", cfg.app, detail::check_name) && !r.node("app"))
      r.error("app", "missing required key 'app'", "the application's name, e.g. app: meshhook");
    int version = 1;
    r.integer("version", version, 1, 1);
    const Node* defaults = r.raw("defaults", "map", "{}");
    if (defaults && defaults->type != Node::Type::kMap) {
      top.add(defaults->mark, "defaults",
              "expected a map of settings, got " + std::string(defaults->type_name()));
      defaults = nullptr;
    }
    const Node* envs = r.raw("environments", "map", "required");
    std::vector<const detail::Entry*> env_entries;
    if (!envs) {
      r.error("environments", "missing required key 'environments'",
              "define at least one, e.g. environments: {staging: {}, production: {}}");
    } else if (envs->type != Node::Type::kMap) {
      top.add(envs->mark, "environments",
              "expected a map of environment names, got " + std::string(envs->type_name()));
    } else if (envs->map.empty()) {
      r.error("environments", "no environments are defined", "add e.g. production: {}");
    } else {
      for (const detail::Entry& e : envs->map) {
        if (auto p = detail::check_name(e.key)) {
          top.add(e.key_mark, e.value.path, p->message, p->hint);
        } else if (!e.value.is_null() && e.value.type != Node::Type::kMap) {
          top.add(e.value.mark, e.value.path,
                  "expected a map of settings, got " + std::string(e.value.type_name()),
                  "write " + e.key + ": {} to use the defaults as they are");
        } else {
          env_entries.push_back(&e);
        }
      }
    }
    // Top-level keys starting with "x-" are the user's (anchors to reuse,
    // as in Compose files) and are ignored.
    for (const detail::Entry& e : root.map)
      if (e.key.rfind("x-", 0) == 0) r.raw(e.key, "", "");
    r.finish(top_level_hint);
    for (const detail::Entry* e : env_entries) cfg.environments.push_back(e->key);

    Node base = defaults ? *defaults : empty_map("defaults", Mark{1, 1});
    std::error_code ec;
    std::filesystem::path base_dir = std::filesystem::absolute(file, ec).parent_path();
    for (const detail::Entry* entry : env_entries) {
      const std::string& env_name = entry->key;
      const Node& v = entry->value;
      Node overlay = v.is_null() ? empty_map(v.path, entry->key_mark) : v;
      Node merged = detail::merge(base, overlay);
      Diags d{name, {}, nullptr};
      Reader er(d, &merged, merged.path, "", merged.key_mark);
      Environment env;
      env.app = cfg.app;
      env.base_dir = base_dir;
      detail::read_environment(er, env, detail::EnvContext{env_name, cfg.environments});
      er.finish();
      for (const Diagnostic& diag : d.list) collect(all, diag, env_name);
      tree->environments.emplace(env_name, std::move(env));
      tree->secrets.emplace(env_name, locate_secrets(merged));
    }
  }
  for (const Diagnostic& d : top.list) collect(all, d, "");

  for (Collected& c : all) {
    if (!c.interpolation && broken.count(c.d.key)) continue;  // follows from an interpolation error
    bool own_env = c.d.key.rfind("environments.", 0) == 0;
    if (!c.envs.empty() && !own_env && c.envs.size() < cfg.environments.size()) {
      std::string list;
      for (const std::string& e : c.envs) list += (list.empty() ? "" : ", ") + e;
      c.d.message +=
          c.envs.size() == 1 ? " (in environment " + list + ")" : " (in environments " + list + ")";
    }
    res.diagnostics.push_back(std::move(c.d));
  }
  std::stable_sort(res.diagnostics.begin(), res.diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                   });
  if (res.diagnostics.empty()) {
    cfg.tree = std::move(tree);
    res.config = std::move(cfg);
  }
  return res;
}

LoadResult load(const std::filesystem::path& file) {
  auto text = fs::read_file(file);
  if (!text) {
    LoadResult res;
    res.diagnostics.push_back(
        {file.string(), 0, 0, "", "cannot read the file: " + text.error().message(),
         text.error().code() == Errc::kNotFound ? "pass the right path with -c FILE" : ""});
    return res;
  }
  return load_text(*text, file, getenv_lookup);
}

Result<Environment> resolve(const Config& config, const std::string& env_name) {
  if (config.tree) {
    auto it = config.tree->environments.find(env_name);
    if (it != config.tree->environments.end()) return it->second;
  }
  std::string known;
  for (const std::string& e : config.environments) known += (known.empty() ? "" : ", ") + e;
  std::string msg = "no environment '" + env_name + "' in " + config.file.string() +
                    " (defined: " + (known.empty() ? "none" : known) + ")";
  std::string near = detail::closest(env_name, config.environments);
  if (!near.empty()) msg += "; did you mean '" + near + "'?";
  return fail(Errc::kNotFound, msg);
}

Result<std::filesystem::path> locate(const std::string& explicit_path) {
  std::error_code ec;
  if (!explicit_path.empty()) {
    if (std::filesystem::is_regular_file(explicit_path, ec))
      return std::filesystem::path(explicit_path);
    if (std::filesystem::exists(explicit_path, ec))
      return fail(Errc::kInvalidArgument, explicit_path + " is not a regular file");
    return fail(Errc::kNotFound, "no such configuration file: " + explicit_path);
  }
  for (const char* name : {"meshdeploy.yml", "meshdeploy.yaml"})
    if (std::filesystem::is_regular_file(name, ec)) return std::filesystem::path(name);
  return fail(Errc::kNotFound, "no meshdeploy.yml in " +
                                   std::filesystem::current_path(ec).string() +
                                   "; run in the folder that holds it, or pass -c FILE");
}

}  // namespace md::config
