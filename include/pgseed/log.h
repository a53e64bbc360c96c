// Logging: the library never writes to stdout/stderr; it calls a sink the caller provides.
#pragma once

#include <functional>
#include <string_view>

namespace pgseed {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// Called from any of the library's threads, one call per line; must be thread-safe.
using LogSink = std::function<void(LogLevel, std::string_view message)>;

}  // namespace pgseed
