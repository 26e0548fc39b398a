#include "core/json.h"

#include <nlohmann/json.hpp>

namespace md {

std::string to_json_text(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace md
