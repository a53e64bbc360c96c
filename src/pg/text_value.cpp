#include "pg/text_value.h"

#include <charconv>
#include <string>

#include "pgseed/error.h"

namespace pgseed::pg {

namespace {
template <typename T>
T parse(std::string_view text, const char* what) {
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    throw Error(ErrorCategory::kDecode, "unexpected value '" + std::string(text.substr(0, 40)) +
                                            "' for " + what + " from the server");
  return v;
}
}  // namespace

int64_t parse_int64(std::string_view text, const char* what) { return parse<int64_t>(text, what); }
int32_t parse_int32(std::string_view text, const char* what) { return parse<int32_t>(text, what); }
uint32_t parse_uint32(std::string_view text, const char* what) { return parse<uint32_t>(text, what); }

}  // namespace pgseed::pg
