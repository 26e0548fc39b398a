// This machine's name, as every message and lock holder names it.
#pragma once

#include <string>

namespace md {

// gethostname(2), or "localhost" when the machine has none.
std::string host_name();

}  // namespace md
