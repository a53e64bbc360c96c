#include "pg/server_error.h"

#include <libpq-fe.h>

#include <cstring>

namespace pgseed::pg {

ErrorClass classify_error(std::string_view sqlstate, bool connection_lost) {
  auto is = [&](std::string_view s) { return sqlstate == s; };
  auto in_class = [&](std::string_view c) { return sqlstate.substr(0, 2) == c; };
  if (sqlstate.empty())
    return connection_lost ? ErrorClass{ErrorCategory::kConnection, true}
                           : ErrorClass{ErrorCategory::kSourceState, false};
  if (in_class("08") || is("57P01") || is("57P02") || is("57P03") || is("53300"))
    return {ErrorCategory::kConnection, true};
  if (is("55006") || is("40001") || is("40P01")) return {ErrorCategory::kSourceState, true};
  if (in_class("28") || is("42501")) return {ErrorCategory::kAuthentication, false};
  if (is("42P01") || is("42704") || is("42601") || is("3D000"))
    return {ErrorCategory::kConfiguration, false};
  return {ErrorCategory::kSourceState, false};
}

std::string take_sqlstate(std::string& msg) {
  auto is_code_char = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); };
  for (size_t p = msg.find(":  "); p != std::string::npos; p = msg.find(":  ", p + 1)) {
    size_t code = p + 3;
    if (code + 7 > msg.size()) break;
    bool ok = msg.compare(code + 5, 2, ": ") == 0;
    for (size_t i = 0; ok && i < 5; ++i) ok = is_code_char(msg[code + i]);
    if (!ok) continue;
    std::string state = msg.substr(code, 5);
    msg.erase(code, 7);
    return state;
  }
  return {};
}

std::string first_line(std::string s) {
  // libpq messages are "FATAL:  msg\nDETAIL: ..." or "connection to server ... failed: msg"
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  auto nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  for (const char* prefix : {"FATAL:  ", "ERROR:  "}) {
    auto p = s.find(prefix);
    if (p != std::string::npos) s = s.substr(0, p) + s.substr(p + std::strlen(prefix));
  }
  return s;
}

Error error_from_result(const PGresult* res, PGconn* conn, const std::string& context) {
  std::string msg = res ? PQresultErrorMessage(res) : "";
  if (msg.empty() && conn) msg = PQerrorMessage(conn);
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string sqlstate = state ? state : "";
  bool lost = !conn || PQstatus(conn) == CONNECTION_BAD;
  ErrorClass c = classify_error(sqlstate, lost);
  std::string line = first_line(msg);
  if (line.empty()) line = lost ? "the connection was closed" : "unknown error";
  return Error(c.category, context.empty() ? line : context + ": " + line, sqlstate, c.transient);
}

}  // namespace pgseed::pg
