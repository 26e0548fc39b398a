// JSON text for every output, record and wire body: the one place that turns
// an nlohmann::json value into text.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace md {

// Serialises `j` (indent < 0: one line; else pretty-printed with that many
// spaces). Never throws: bytes that are not valid UTF-8 in strings and keys
// (a Latin-1 table name, a hook's binary output) become U+FFFD, so the text
// is always valid UTF-8 JSON. Non-ASCII UTF-8 is kept as is.
// WHY one helper: nlohmann's dump() throws type_error 316 on invalid UTF-8 by
// default; every caller must pass error_handler_t::replace, and a grep test
// (core_test.cc, NoRawDump) keeps raw dump() calls out of the tree.
std::string to_json_text(const nlohmann::json& j, int indent = -1);

}  // namespace md
