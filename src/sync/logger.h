// Logger: formats and forwards lines to the caller's LogSink (or drops them).
#pragma once

#include <string>

#include "pgseed/log.h"

namespace pgseed {

class Logger {
 public:
  explicit Logger(LogSink sink = {}) : sink_(std::move(sink)) {}
  void debug(const std::string& m) const { emit(LogLevel::kDebug, m); }
  void info(const std::string& m) const { emit(LogLevel::kInfo, m); }
  void warn(const std::string& m) const { emit(LogLevel::kWarning, m); }
  void error(const std::string& m) const { emit(LogLevel::kError, m); }

 private:
  void emit(LogLevel l, const std::string& m) const {
    if (sink_) sink_(l, m);
  }
  LogSink sink_;
};

}  // namespace pgseed
