// Error category names (include/pgseed/error.h).
#include "pgseed/error.h"

namespace pgseed {

const char* category_name(ErrorCategory c) {
  switch (c) {
    case ErrorCategory::kConnection: return "connection";
    case ErrorCategory::kAuthentication: return "authentication";
    case ErrorCategory::kConfiguration: return "configuration";
    case ErrorCategory::kSourceState: return "source state";
    case ErrorCategory::kStore: return "store";
    case ErrorCategory::kDecode: return "decode";
    case ErrorCategory::kInternal: return "internal";
  }
  return "unknown";
}

}  // namespace pgseed
