// An environment's `hosts:` list from an inventory: reading `terraform output
// -json`, comparing it with the file, and rewriting that one list in place.
// WHY a textual edit and not a YAML re-emit: yaml-cpp's emitter drops
// comments and reorders nothing-but-style; users keep meshdeploy.yml in git
// and review its diffs, so only the lines of the list may change. The edit is
// checked by parsing the result again (replace_hosts).
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "config/config.h"
#include "config/inventory.h"
#include "config/tree.h"
#include "core/json.h"

namespace md::config {
namespace {

using detail::Node;

std::string json_type(const nlohmann::json& j) {
  if (j.is_string()) return "a string";
  if (j.is_number()) return "a number";
  if (j.is_boolean()) return "a boolean";
  if (j.is_null()) return "null";
  if (j.is_array()) return "a list";
  return "an object";
}

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// Only the names `hosts[].name` accepts (schema.cc check_name): letters,
// digits, '.', '_' and '-', starting with a letter or digit.
bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 63 || !std::isalnum(static_cast<unsigned char>(s.front())))
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string describe(const InventoryHost& h) {
  return h.name + " " + h.address + (h.host_key.empty() ? "" : " (host key set)");
}

// ---- the textual edit ---------------------------------------------------------

struct Line {
  std::string_view text;  // without the line end
  size_t begin = 0;       // offset of its first byte in the file
  size_t end = 0;         // offset after its line end
};

std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t stop = nl == std::string_view::npos ? text.size() : nl;
    std::string_view body = text.substr(pos, stop - pos);
    if (!body.empty() && body.back() == '\r') body.remove_suffix(1);
    out.push_back({body, pos, nl == std::string_view::npos ? text.size() : nl + 1});
    pos = out.back().end;
  }
  return out;
}

size_t indent_of(std::string_view line) { return line.find_first_not_of(' '); }
bool is_blank_or_comment(std::string_view line) {
  size_t i = line.find_first_not_of(" \t");
  return i == std::string_view::npos || line[i] == '#';
}

// `${` becomes `$${`, so that interpolation gives the value back.
std::string escape_interpolation(const std::string& value) {
  std::string v;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value.compare(i, 2, "${") == 0) v += '$';
    v += value[i];
  }
  return v;
}

// A scalar as YAML text: plain when it cannot be read as anything else,
// otherwise a JSON string (valid YAML double-quoted).
std::string yaml_scalar(const std::string& value) {
  std::string v = escape_interpolation(value);
  bool plain = !v.empty() && std::isalnum(static_cast<unsigned char>(v.front())) &&
               std::all_of(v.begin(), v.end(), [](char c) {
                 return std::isalnum(static_cast<unsigned char>(c)) ||
                        std::string_view("._-@/:[]").find(c) != std::string_view::npos;
               });
  // "true", "null", "1e3", "0x1f": a plain scalar that YAML would type.
  static const std::set<std::string> kWords = {"true", "false", "yes",  "no",    "on",
                                               "off",  "null",  "True", "False", "Null"};
  if (plain && (kWords.count(v) || v.find('[') != std::string::npos ||
                v.find_first_not_of("0123456789.eE+-xXabcdefABCDEF_") == std::string::npos))
    plain = false;
  return plain ? v : to_json_text(nlohmann::json(v));
}

std::string render_list(std::span<const InventoryHost> hosts, const std::string& indent,
                        const std::string& eol) {
  std::string out;
  auto line = [&](std::string_view key, const std::string& value) {
    out.append(indent).append(key).append(value).append(eol);
  };
  line("hosts:", "");
  for (const InventoryHost& h : hosts) {
    line("  - name: ", yaml_scalar(h.name));
    line("    address: ", yaml_scalar(h.address));
    if (!h.host_key.empty()) line("    host_key: ", yaml_scalar(h.host_key));
  }
  return out;
}

bool same_tree(const Node& a, const Node& b) {
  if (a.type != b.type || a.scalar != b.scalar || a.map.size() != b.map.size() ||
      a.seq.size() != b.seq.size())
    return false;
  for (size_t i = 0; i < a.map.size(); ++i)
    if (a.map[i].key != b.map[i].key || !same_tree(a.map[i].value, b.map[i].value)) return false;
  for (size_t i = 0; i < a.seq.size(); ++i)
    if (!same_tree(a.seq[i], b.seq[i])) return false;
  return true;
}

// The tree without environments.<env>.hosts, for comparing the rest.
Node without_hosts(Node root, const std::string& env) {
  for (detail::Entry& e : root.map) {
    if (e.key != "environments") continue;
    for (detail::Entry& en : e.value.map) {
      if (en.key != env) continue;
      std::erase_if(en.value.map, [](const detail::Entry& x) { return x.key == "hosts"; });
    }
  }
  return root;
}

const Node* env_node(const Node& root, const std::string& env) {
  const Node* envs = root.find("environments");
  return envs ? envs->find(env) : nullptr;
}

// True when the list in the (not interpolated) tree is exactly `hosts`.
bool tree_lists(const Node* list, std::span<const InventoryHost> hosts) {
  if (!list || list->type != Node::Type::kSeq || list->seq.size() != hosts.size()) return false;
  for (size_t i = 0; i < hosts.size(); ++i) {
    const Node& item = list->seq[i];
    auto field = [&](std::string_view k) -> std::string {
      const Node* n = item.find(k);
      return n && n->type == Node::Type::kScalar ? n->scalar : "";
    };
    if (item.type != Node::Type::kMap || item.map.size() != (hosts[i].host_key.empty() ? 2u : 3u) ||
        field("name") != escape_interpolation(hosts[i].name) ||
        field("address") != escape_interpolation(hosts[i].address) ||
        field("host_key") != escape_interpolation(hosts[i].host_key))
      return false;
  }
  return true;
}

}  // namespace

Result<std::vector<InventoryHost>> parse_terraform_hosts(std::string_view json_text,
                                                         const std::string& source,
                                                         const std::string& output) {
  auto bad = [&](const std::string& where, const std::string& what) {
    return fail(Errc::kInvalidArgument, source + ": " + (where.empty() ? "" : where + ": ") + what);
  };
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return bad("", "not JSON (expected the output of `terraform output -json`)");
  if (!doc.is_object()) return bad("", "expected a JSON object of outputs, got " + json_type(doc));
  auto out = doc.find(output);
  if (out == doc.end()) {
    std::string names;
    for (const auto& [k, v] : doc.items()) names += (names.empty() ? "" : ", ") + k;
    return bad("", "no output '" + output + "' (outputs: " + (names.empty() ? "none" : names) +
                       "); does the configuration use examples/meshhook/terraform?");
  }
  if (!out->is_object() || !out->contains("value"))
    return bad(output,
               "expected {\"sensitive\", \"type\", \"value\"} as `terraform output "
               "-json` writes it, got " +
                   json_type(*out));
  const nlohmann::json& value = (*out)["value"];
  std::string at = output + ".value";
  if (!value.is_array()) return bad(at, "expected a list of hosts, got " + json_type(value));
  if (value.empty()) return bad(at, "the list is empty: an environment needs at least one host");
  std::vector<InventoryHost> hosts;
  std::set<std::string> names;
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string here = at + "[" + std::to_string(i) + "]";
    const nlohmann::json& item = value[i];
    if (!item.is_object()) return bad(here, "expected an object, got " + json_type(item));
    InventoryHost h;
    for (const auto& [key, field] : item.items()) {
      std::string* into = key == "name"       ? &h.name
                          : key == "address"  ? &h.address
                          : key == "host_key" ? &h.host_key
                                              : nullptr;
      if (!into) return bad(here, "unknown key '" + key + "' (expected name, address, host_key)");
      if (key == "host_key" && field.is_null()) continue;
      std::string where = here;
      where.append(".").append(key);
      if (!field.is_string()) return bad(where, "expected a string, got " + json_type(field));
      *into = field.get<std::string>();
      if (has_control(*into)) return bad(where, "contains a control character");
    }
    if (h.name.empty()) return bad(here, "missing 'name'");
    if (!valid_name(h.name))
      return bad(here + ".name",
                 "'" + h.name + "' is not a host name (letters, digits, '.', '_', '-')");
    if (h.address.empty()) return bad(here, "missing 'address'");
    if (h.address.rfind("ssh://", 0) != 0 || h.address.size() == 6)
      return bad(here + ".address", "expected ssh://user@host[:port], got '" + h.address + "'");
    if (!names.insert(h.name).second)
      return bad(here + ".name", "two hosts are named '" + h.name + "'");
    hosts.push_back(std::move(h));
  }
  return hosts;
}

std::vector<std::string> diff_hosts(std::span<const InventoryHost> in_file,
                                    std::span<const InventoryHost> inventory) {
  std::vector<std::string> out;
  std::map<std::string, const InventoryHost*> file_by_name, inv_by_name;
  for (const InventoryHost& h : in_file) file_by_name[h.name] = &h;
  for (const InventoryHost& h : inventory) inv_by_name[h.name] = &h;
  for (const InventoryHost& h : in_file)
    if (!inv_by_name.count(h.name)) out.push_back("- " + describe(h));
  for (const InventoryHost& h : inventory) {
    auto it = file_by_name.find(h.name);
    if (it == file_by_name.end()) {
      out.push_back("+ " + describe(h));
      continue;
    }
    const InventoryHost& f = *it->second;
    if (f.address != h.address)
      out.push_back("~ " + h.name + ": address " + f.address + " -> " + h.address);
    if (f.host_key != h.host_key)
      out.push_back("~ " + h.name + ": host_key " + (f.host_key.empty() ? "(none)" : f.host_key) +
                    " -> " + (h.host_key.empty() ? "(none)" : h.host_key));
  }
  if (out.empty()) {
    bool same_order = std::equal(in_file.begin(), in_file.end(), inventory.begin(), inventory.end(),
                                 [](const auto& a, const auto& b) { return a.name == b.name; });
    if (!same_order) {
      auto names = [](std::span<const InventoryHost> l) {
        std::string s;
        for (const InventoryHost& h : l) s += (s.empty() ? "" : ", ") + h.name;
        return s;
      };
      out.push_back("~ order: " + names(in_file) + " -> " + names(inventory));
    }
  }
  return out;
}

Result<std::string> replace_hosts(std::string_view text, const std::string& file,
                                  const std::string& env_name,
                                  std::span<const InventoryHost> hosts) {
  auto refuse = [&](const std::string& why) {
    return fail(Errc::kFailedPrecondition,
                file + ": cannot rewrite environments." + env_name + ".hosts safely: " + why +
                    "; edit the hosts: list by hand (`meshdeploy hosts import --check` shows "
                    "the difference)");
  };
  detail::Parsed parsed = detail::parse_yaml(text, file);
  if (!parsed.root) {
    std::string first = parsed.diagnostics.empty() ? "" : parsed.diagnostics.front().format();
    return fail(Errc::kInvalidArgument, file + ": not valid YAML: " + first);
  }
  const Node* env = env_node(*parsed.root, env_name);
  if (!env) return fail(Errc::kNotFound, file + ": no environment '" + env_name + "'");
  std::vector<Line> lines = split_lines(text);
  std::string eol = text.find("\r\n") != std::string_view::npos ? "\r\n" : "\n";
  if (text.find('\t') != std::string_view::npos) return refuse("the file contains tabs");

  std::string edited;
  const detail::Entry* hosts_entry = nullptr;
  if (env->type == Node::Type::kMap)
    for (const detail::Entry& e : env->map)
      if (e.key == "hosts") hosts_entry = &e;
  if (env->type != Node::Type::kMap || env->map.empty())
    return refuse("the environment is not a map of keys");
  if (hosts_entry) {
    // The list runs from its key's line to the last line indented deeper than
    // the key (or a `- ` item at the key's own indent); trailing blank and
    // comment lines stay where they are.
    size_t first = static_cast<size_t>(hosts_entry->key_mark.line - 1);
    size_t col = static_cast<size_t>(hosts_entry->key_mark.col - 1);
    if (first >= lines.size() || lines[first].text.substr(col, 6) != "hosts:" ||
        indent_of(lines[first].text) != col)
      return refuse("the hosts key is not written as `hosts:` at the start of its line");
    size_t last = first;
    for (size_t i = first + 1; i < lines.size(); ++i) {
      std::string_view t = lines[i].text;
      if (is_blank_or_comment(t)) continue;
      size_t ind = indent_of(t);
      if (ind > col || (ind == col && t[ind] == '-')) {
        last = i;
        continue;
      }
      break;
    }
    edited.append(text.substr(0, lines[first].begin));
    edited += render_list(hosts, std::string(col, ' '), eol);
    edited.append(text.substr(lines[last].end));
    if (lines[last].end == text.size() && !text.empty() && text.back() != '\n') {
      // The file did not end with a line end; neither does the edit.
      edited.resize(edited.size() - eol.size());
    }
  } else {
    // No list yet: add one as the environment's first key, at its keys' indent.
    const detail::Entry& first_key = env->map.front();
    size_t line = static_cast<size_t>(first_key.key_mark.line - 1);
    size_t col = static_cast<size_t>(first_key.key_mark.col - 1);
    if (line >= lines.size() || indent_of(lines[line].text) != col || col == 0)
      return refuse("the environment is written in flow style ({...})");
    // Comments right above the first key belong to it: insert above them.
    size_t at = line;
    while (at > 0 && is_blank_or_comment(lines[at - 1].text) && !lines[at - 1].text.empty() &&
           indent_of(lines[at - 1].text) == col)
      --at;
    edited.append(text.substr(0, lines[at].begin));
    edited += render_list(hosts, std::string(col, ' '), eol);
    edited.append(text.substr(lines[at].begin));
  }

  detail::Parsed again = detail::parse_yaml(edited, file);
  if (!again.root) return refuse("the edited file does not parse");
  if (!tree_lists(env_node(*again.root, env_name) ? env_node(*again.root, env_name)->find("hosts")
                                                  : nullptr,
                  hosts))
    return refuse("the edited list does not read back as written");
  if (!same_tree(without_hosts(*parsed.root, env_name), without_hosts(*again.root, env_name)))
    return refuse("the edit would change more than this list (an anchor or alias shares it?)");
  return edited;
}

}  // namespace md::config
