// date, timestamp and timestamptz in PostgreSQL's text form (DateStyle=ISO, TimeZone=UTC,
// as pgseed's sessions print them) <-> integers in PostgreSQL's own units and epoch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgseed {

// Days since 2000-01-01 of "YYYY-MM-DD[ BC]" (4 to 7 year digits, proleptic Gregorian);
// "infinity" / "-infinity" are INT64_MAX / INT64_MIN. nullopt for anything else (an
// impossible date, such as 2023-02-29, included).
std::optional<int64_t> parse_date(std::string_view text);

// Microseconds since 2000-01-01 00:00:00 of "YYYY-MM-DD HH:MM:SS[.ffffff][ BC]" ('T' also
// separates date and time); with `with_tz` an offset must follow the time (+HH[:MM[:SS]]),
// and the result is in UTC. Infinities as for dates. nullopt for anything else and for
// values beyond PostgreSQL's range.
std::optional<int64_t> parse_timestamp(std::string_view text, bool with_tz);

// PostgreSQL's output for the values above (timestamptz with "+00"; trailing zeros of the
// fraction dropped; " BC" last).
std::string date_text(int64_t days);
std::string timestamp_text(int64_t micros, bool with_tz);
// The same, appended to `out`.
void append_date_text(std::string& out, int64_t days);
void append_timestamp_text(std::string& out, int64_t micros, bool with_tz);

}  // namespace pgseed
