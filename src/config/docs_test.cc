// The configuration files and docs shipped in the repository: every example
// validates, and every key the loader accepts is documented (with its type
// and default) in docs/configuration.md, and nothing else is.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "config/config.h"
#include "core/fs.h"

namespace md::config {
namespace {

namespace sfs = std::filesystem;

sfs::path source_dir() { return MD_SOURCE_DIR; }

// Every meshdeploy configuration under docs/ and examples/: files named
// meshdeploy.yml / meshdeploy.yaml anywhere, and every YAML file under
// docs/examples/ (node_modules skipped).
std::vector<sfs::path> example_configs() {
  std::vector<sfs::path> out;
  for (const char* top : {"docs", "examples"}) {
    sfs::path root = source_dir() / top;
    if (!sfs::exists(root)) continue;
    for (auto it = sfs::recursive_directory_iterator(root);
         it != sfs::recursive_directory_iterator(); ++it) {
      if (it->is_directory() && it->path().filename() == "node_modules") {
        it.disable_recursion_pending();
        continue;
      }
      std::string ext = it->path().extension().string();
      if (!it->is_regular_file() || (ext != ".yml" && ext != ".yaml")) continue;
      std::string stem = it->path().stem().string();
      bool in_docs_examples = it->path()
                                  .lexically_relative(source_dir() / "docs" / "examples")
                                  .string()
                                  .rfind("..", 0) != 0;
      if (stem == "meshdeploy" || in_docs_examples) out.push_back(it->path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Examples, EveryExampleConfigurationIsValid) {
  auto files = example_configs();
  // docs/examples/meshdeploy.yml and examples/meshhook/meshdeploy.yml at least.
  ASSERT_GE(files.size(), 2u);
  for (const sfs::path& f : files) {
    SCOPED_TRACE(f.string());
    LoadResult r = load(f);
    std::string all;
    for (const Diagnostic& d : r.diagnostics) all += d.format() + "\n";
    ASSERT_TRUE(r.config) << all;
    EXPECT_FALSE(r.config->environments.empty());
    for (const std::string& env : r.config->environments) {
      auto e = resolve(*r.config, env);
      ASSERT_TRUE(e) << e.error().what();
      EXPECT_FALSE(e->services.empty());
      // Rendering for `config show` works for every environment.
      EXPECT_NE(render_yaml(*e).find("environment: " + env), std::string::npos);
    }
  }
}

TEST(Examples, TheDocsExampleUsesEveryPart) {
  LoadResult r = load(source_dir() / "docs/examples/meshdeploy.yml");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->environments,
            (std::vector<std::string>{"development", "staging", "production"}));
  auto prod = resolve(*r.config, "production");
  ASSERT_TRUE(prod);
  std::set<ServiceKind> kinds;
  for (const Service& s : prod->services) kinds.insert(s.kind);
  EXPECT_EQ(kinds.size(), 2u) << "web and worker services";
  EXPECT_EQ(prod->strategy.kind, StrategyKind::kCanary);
  EXPECT_TRUE(prod->migrations.enabled);
  std::set<ChannelKind> channels;
  for (const Channel& c : prod->notifications.channels) channels.insert(c.kind);
  EXPECT_EQ(channels.size(), 3u) << "slack, webhook and email";
  EXPECT_FALSE(prod->hooks.pre_deploy.empty());
}

// The value after `flag ` (or `flag=`) on each line of `text` that has it.
std::vector<std::string> values_after(const std::string& text, const std::string& flag) {
  std::vector<std::string> out;
  for (size_t pos = text.find(flag); pos != std::string::npos; pos = text.find(flag, pos + 1)) {
    size_t b = pos + flag.size();
    size_t e = text.find_first_of(" \n`)", b);
    out.push_back(text.substr(b, e == std::string::npos ? std::string::npos : e - b));
  }
  return out;
}

// Regression: the systemd unit, docs/meshhook.md and the example configs
// disagreed on the agent's root and listener. The units are the one place on
// the host; the production environments say the same, and meshhook.md never
// names another --root or --listen.
TEST(Examples, TheAgentRootAndListenerAgreeWithTheSystemdUnits) {
  auto service = fs::read_file(source_dir() / "packaging/systemd/meshdeploy-agent.service.in");
  auto socket = fs::read_file(source_dir() / "packaging/systemd/meshdeploy-agent.socket");
  ASSERT_TRUE(service && socket);
  const std::vector<std::string> roots = values_after(*service, "--root ");
  ASSERT_FALSE(roots.empty());
  for (const std::string& r : roots) EXPECT_EQ(r, roots.front());
  const std::vector<std::string> listens = values_after(*socket, "\nListenStream=");
  ASSERT_EQ(listens.size(), 1u) << "one active ListenStream";
  auto ex = load(source_dir() / "examples/meshhook/meshdeploy.yml");
  ASSERT_TRUE(ex.config);
  auto prod = resolve(*ex.config, "production");
  ASSERT_TRUE(prod);
  EXPECT_EQ(prod->agent.root, roots.front());
  EXPECT_EQ(prod->proxy.listen, listens.front());
  auto docs = load(source_dir() / "docs/examples/meshdeploy.yml");
  ASSERT_TRUE(docs.config);
  auto docs_prod = resolve(*docs.config, "production");
  ASSERT_TRUE(docs_prod);
  EXPECT_EQ(docs_prod->agent.root, roots.front());
  auto guide = fs::read_file(source_dir() / "docs/meshhook.md");
  ASSERT_TRUE(guide);
  for (const std::string& r : values_after(*guide, "--root "))
    EXPECT_EQ(r, roots.front()) << "meshhook.md";
  for (const std::string& l : values_after(*guide, "--listen "))
    EXPECT_EQ(l, listens.front()) << "meshhook.md";
  for (const std::string& r : values_after(*guide, "root: "))
    EXPECT_EQ(r, roots.front() + "}") << "meshhook.md";
  for (const std::string& l : values_after(*guide, "listen: "))
    EXPECT_EQ(l, listens.front() + "}") << "meshhook.md";
}

struct DocRow {
  std::string type, default_text;
};

// The rows of every table in docs/configuration.md whose first cell is a
// `key`: key -> (type, default).
std::map<std::string, DocRow> documented_keys() {
  auto text = fs::read_file(source_dir() / "docs/configuration.md");
  EXPECT_TRUE(text) << "docs/configuration.md is missing";
  std::map<std::string, DocRow> rows;
  if (!text) return rows;
  size_t pos = 0;
  bool in_key_table = false;
  while (pos < text->size()) {
    size_t end = text->find('\n', pos);
    if (end == std::string::npos) end = text->size();
    std::string line = text->substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind("| Key | Type | Default |", 0) == 0) in_key_table = true;
    if (line.empty() || line[0] != '|') {
      in_key_table = false;
      continue;
    }
    if (!in_key_table) continue;
    std::vector<std::string> cells;
    size_t i = 1;
    // Split on '|' outside backticks.
    std::string cell;
    bool tick = false;
    for (; i < line.size(); ++i) {
      char c = line[i];
      if (c == '`') tick = !tick;
      if (c == '|' && !tick) {
        cells.push_back(cell);
        cell.clear();
        continue;
      }
      cell += c;
    }
    for (std::string& c : cells) {
      c.erase(0, c.find_first_not_of(' '));
      c.erase(c.find_last_not_of(' ') + 1);
    }
    if (cells.size() < 3 || cells[0].size() < 3 || cells[0].front() != '`' ||
        cells[0].back() != '`')
      continue;
    rows[cells[0].substr(1, cells[0].size() - 2)] = DocRow{cells[1], cells[2]};
  }
  return rows;
}

TEST(Docs, EveryKeyIsDocumentedWithItsTypeAndDefault) {
  auto rows = documented_keys();
  ASSERT_FALSE(rows.empty());
  for (const KeyInfo& k : schema_keys()) {
    SCOPED_TRACE(k.path);
    auto it = rows.find(k.path);
    ASSERT_NE(it, rows.end()) << "key `" << k.path
                              << "` is not in a table of docs/configuration.md";
    EXPECT_EQ(it->second.type.substr(0, k.type.size()), k.type);
    std::string want =
        k.default_text.empty() ? "—"
        : k.default_text == "required" || k.default_text.find('`') != std::string::npos
            ? k.default_text
            : "`" + k.default_text + "`";
    EXPECT_EQ(it->second.default_text, want);
  }
}

TEST(Docs, EveryDocumentedKeyExists) {
  std::set<std::string> known;
  for (const KeyInfo& k : schema_keys()) known.insert(k.path);
  for (const auto& [key, row] : documented_keys())
    EXPECT_TRUE(known.count(key)) << "docs/configuration.md documents `" << key
                                  << "`, which the loader does not accept";
}

}  // namespace
}  // namespace md::config
