// Fuzzes the redactor: the input is "secret1\x00secret2\x00...\x01text";
// the text is redacted in one shot, through a stream cut at points taken
// from the input, and by the naive reference: all three must agree.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "secrets/redact_impl.h"
#include "secrets/secrets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t sep = in.find('\x01');
  if (sep == std::string_view::npos || in.size() - sep > 4096) return 0;
  md::secrets::SecretMap secrets;
  std::string_view list = in.substr(0, sep);
  for (size_t pos = 0, i = 0; pos <= list.size() && i < 8; ++i) {
    size_t end = std::min(list.find('\0', pos), list.size());
    std::string v(list.substr(pos, end - pos));
    if (v.size() >= md::secrets::kMinSecretBytes && v.size() <= 64)
      secrets.emplace("S" + std::to_string(i), md::secrets::Secret(v));
    pos = end + 1;
  }
  auto r = md::secrets::Redactor::create(secrets);
  if (!r) return 0;
  std::string_view text = in.substr(sep + 1);
  std::string one = (*r)->redact(text);
  // Cut points: each byte of the text decides whether a write ends after it.
  md::secrets::Redactor::Stream s(*r);
  std::string streamed;
  size_t from = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) * 31u + i) % 7 == 0) {
      streamed += s.write(text.substr(from, i + 1 - from));
      from = i + 1;
    }
  }
  streamed += s.write(text.substr(from));
  streamed += s.flush();
  if (streamed != one) __builtin_trap();
  if (text.size() <= 512 &&
      one != md::secrets::internal::naive_redact((*r)->patterns(), (*r)->decoded_patterns(),
                                                 (*r)->decode_reach(), text))
    __builtin_trap();
  return 0;
}
